using System.Text.Json;
using Synchro.Pipeline.Reading;

namespace Synchro.Pipeline.Samples.SyncServer;

/// <summary>
/// <c>GET /sync/changes</c> (pulls) and <c>GET /sync/snapshot</c> (bucket snapshots), written straight to the response;
/// the protocol is described in samples/README.md.
/// </summary>
public static class SyncEndpoints
{
    private static readonly JsonEncodedText s_put = JsonEncodedText.Encode("put");
    private static readonly JsonEncodedText s_remove = JsonEncodedText.Encode("remove");

    /// <summary>Maps the two endpoints under <c>/sync</c>.</summary>
    public static IEndpointRouteBuilder MapSyncEndpoints(this IEndpointRouteBuilder endpoints)
    {
        var sync = endpoints.MapGroup("/sync");
        sync.MapGet("/changes", ChangesAsync);
        sync.MapGet("/snapshot", SnapshotAsync);
        return endpoints;
    }

    /// <summary>
    /// <c>?bucket=a&amp;bucket=b&amp;cursor=…&amp;limit=1000</c>: the rows after the cursor in seq order, then the next cursor and
    /// whether more are waiting; 409 with the buckets to resync when the cursor cannot be continued.
    /// </summary>
    private static async Task ChangesAsync(HttpContext context, ChangelogReader reader, ChangelogReaderOptions options)
    {
        var queryError = SyncRequest.Read(context, options, out var buckets, out var limit);
        var cursorError = SyncRequest.ReadCursor(context, out var cursor);
        var error = queryError ?? cursorError;
        if (error is null && cursor is null)
            error = new SyncError(StatusCodes.Status400BadRequest, "No cursor: a new client starts from GET /sync/snapshot, whose last page gives the cursor.");
        if (error is { } refused)
        {
            await SyncJson.WriteErrorAsync(context.Response, refused);
            return;
        }

        ChangelogPage page;
        try
        {
            page = await reader.ReadAsync(buckets, cursor!, limit, context.RequestAborted);
        }
        catch (ArgumentException e)
        {
            // A bucket id longer than the changelog takes (ChangelogReaderOptions.MaxBucketIdBytes).
            await SyncJson.WriteErrorAsync(context.Response, new SyncError(StatusCodes.Status400BadRequest, e.Message));
            return;
        }

        using var _ = page;
        if (page.Status == ChangelogReadStatus.ResyncRequired)
        {
            await WriteResyncAsync(context.Response, page);
            return;
        }

        using var json = SyncJson.Start(context.Response, StatusCodes.Status200OK, SyncRequest.WantsNdjson(context.Request));
        var writer = json.Writer;
        if (!json.Ndjson)
        {
            writer.WriteStartObject();
            writer.WriteStartArray("rows"u8);
        }
        for (var i = 0; i < page.Count;)
        {
            // Rows are written synchronously (an entry's record id is a span over the page's buffer) between awaited flushes.
            while (i < page.Count && !json.ShouldFlush)
            {
                WriteRow(writer, page[i++]);
                json.EndLine();
            }
            await json.FlushAsync();
        }
        if (!json.Ndjson)
            writer.WriteEndArray();
        else
            writer.WriteStartObject();
        writer.WriteString("cursor"u8, page.Next.ToString());
        writer.WriteBoolean("hasMore"u8, page.HasMore);
        writer.WriteEndObject();
        json.EndLine();
        await json.FlushAsync();
    }

    private static void WriteRow(Utf8JsonWriter writer, in ChangelogEntry entry)
    {
        writer.WriteStartObject();
        writer.WriteNumber("seq"u8, entry.Seq);
        writer.WriteString("bucket"u8, entry.BucketId);
        writer.WriteString("table"u8, entry.TableName);
        writer.WriteString("id"u8, entry.RecordIdSpan);
        // Insert and update both mean "fetch the current row and put it"; delete means "remove it from this bucket".
        writer.WriteString("op"u8, entry.Operation == ChangeOperation.Delete ? s_remove : s_put);
        writer.WriteEndObject();
    }

    /// <summary>409 Conflict: <c>{"resync": [buckets], "reason": "horizonPassed" | "cursorAhead", "error": "…"}</c>.</summary>
    private static async Task WriteResyncAsync(HttpResponse response, ChangelogPage page)
    {
        using var json = SyncJson.Start(response, StatusCodes.Status409Conflict, ndjson: false);
        var writer = json.Writer;
        writer.WriteStartObject();
        writer.WriteStartArray("resync"u8);
        foreach (var bucket in page.ResyncBuckets)
            writer.WriteStringValue(bucket);
        writer.WriteEndArray();
        var cursorAhead = page.ResyncReason == ResyncReason.CursorAhead;
        writer.WriteString("reason"u8, cursorAhead ? "cursorAhead"u8 : "horizonPassed"u8);
        writer.WriteString("error"u8, cursorAhead
            ? "The cursor is ahead of this changelog (another or a restored one): drop all local state and start again from GET /sync/snapshot without a cursor."
            : "Changes these buckets need were compacted away: clear them locally and load them again from GET /sync/snapshot with this cursor.");
        writer.WriteEndObject();
        await json.FlushAsync();
    }

    /// <summary>
    /// <c>?bucket=a&amp;bucket=b&amp;after=…&amp;limit=1000&amp;cursor=…</c>: a page of the buckets' current members, keyset-paged;
    /// <c>after</c> is the previous page's token. The last page gives the cursor to pull changes from: the snapshot's
    /// position for these buckets, merged into the client's <c>cursor</c> when it sends one (a resync of some buckets).
    /// </summary>
    private static async Task SnapshotAsync(HttpContext context, ChangelogReader reader, ChangelogReaderOptions options)
    {
        var queryError = SyncRequest.Read(context, options, out var buckets, out var limit);
        var cursorError = SyncRequest.ReadCursor(context, out var cursor);
        var tokenError = SyncRequest.ReadSnapshotToken(context, out var after);
        var error = queryError ?? cursorError ?? tokenError;
        if (error is { } refused)
        {
            await SyncJson.WriteErrorAsync(context.Response, refused);
            return;
        }

        BucketSnapshotPage page;
        try
        {
            page = await reader.ReadSnapshotAsync(buckets, after, limit, context.RequestAborted);
        }
        catch (ArgumentException e)
        {
            // A token passed with other buckets than the snapshot's that issued it.
            await SyncJson.WriteErrorAsync(context.Response, new SyncError(StatusCodes.Status400BadRequest, e.Message));
            return;
        }

        using var json = SyncJson.Start(context.Response, StatusCodes.Status200OK, SyncRequest.WantsNdjson(context.Request));
        var writer = json.Writer;
        if (!json.Ndjson)
        {
            writer.WriteStartObject();
            writer.WriteStartArray("members"u8);
        }
        var members = page.Members;
        for (var i = 0; i < members.Count;)
        {
            while (i < members.Count && !json.ShouldFlush)
            {
                var member = members[i++];
                writer.WriteStartObject();
                writer.WriteString("bucket"u8, member.BucketId);
                writer.WriteString("table"u8, member.TableName);
                writer.WriteString("id"u8, member.RecordId);
                writer.WriteEndObject();
                json.EndLine();
            }
            await json.FlushAsync();
        }
        if (!json.Ndjson)
            writer.WriteEndArray();
        else
            writer.WriteStartObject();
        if (page.Next is { } next)
            writer.WriteString("after"u8, next.ToString());
        else
            writer.WriteNull("after"u8);
        if (page.IsLast)
            writer.WriteString("cursor"u8, (cursor is null ? page.Cursor! : cursor.WithBucketPositions(buckets, page.Position)).ToString());
        else
            writer.WriteNull("cursor"u8);
        writer.WriteEndObject();
        json.EndLine();
        await json.FlushAsync();
    }
}
