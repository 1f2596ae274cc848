using Synchro.Pipeline.Reading;

namespace Synchro.Pipeline.Samples.SyncServer;

/// <summary>A refused request: the HTTP status and a message that says what to change.</summary>
internal readonly record struct SyncError(int StatusCode, string Message);

/// <summary>The query of a sync request, checked: the buckets (authorised), the page size and the response format.</summary>
internal static class SyncRequest
{
    public const int DefaultLimit = 1_000;

    public const string NdjsonMediaType = "application/x-ndjson";

    /// <summary>Checks the caller, then reads <c>limit</c> and <c>bucket</c> (repeated, at least one, each one the caller may read).</summary>
    public static SyncError? Read(HttpContext context, ChangelogReaderOptions options, out string[] buckets, out int limit)
    {
        buckets = [];
        limit = DefaultLimit;
        var query = context.Request.Query;
        // Who asks first: the application's rule, the one place that decides (BucketAuthorization).
        if (BucketAuthorization.ReadableBuckets(context) is not { } readable)
            return new SyncError(StatusCodes.Status401Unauthorized, $"Who is asking? Send the {BucketAuthorization.UserHeader} header.");

        if (query.TryGetValue("limit", out var limitText)
            && (limitText.Count != 1 || !int.TryParse(limitText[0], out limit) || limit < 1 || limit > options.MaxLimit))
        {
            return new SyncError(StatusCodes.Status400BadRequest, $"limit must be one whole number from 1 to {options.MaxLimit}.");
        }

        var requested = query["bucket"];
        if (requested.Count == 0)
            return new SyncError(StatusCodes.Status400BadRequest, "Name the buckets to read: bucket=a&bucket=b.");
        // The same bucket twice is the same set of buckets: the cursor covers sets, not lists.
        var distinct = new HashSet<string>(StringComparer.Ordinal);
        foreach (var bucket in requested)
        {
            if (string.IsNullOrEmpty(bucket))
                return new SyncError(StatusCodes.Status400BadRequest, "A bucket name is empty.");
            distinct.Add(bucket);
        }
        if (distinct.Count > options.MaxBuckets)
            return new SyncError(StatusCodes.Status400BadRequest, $"{distinct.Count} buckets named; at most {options.MaxBuckets} per request.");

        foreach (var bucket in distinct)
        {
            if (!readable.Contains(bucket))
                return new SyncError(StatusCodes.Status403Forbidden, $"Bucket '{bucket}' is not one this user may read.");
        }

        buckets = [.. distinct];
        return null;
    }

    /// <summary>Reads the optional <c>cursor</c>: null when absent.</summary>
    public static SyncError? ReadCursor(HttpContext context, out ChangelogCursor? cursor)
    {
        cursor = null;
        if (!context.Request.Query.TryGetValue("cursor", out var text))
            return null;
        if (text.Count != 1)
            return new SyncError(StatusCodes.Status400BadRequest, "Send one cursor.");
        try
        {
            cursor = ChangelogCursor.Parse(text[0]!);
            return null;
        }
        catch (FormatException e)
        {
            return new SyncError(StatusCodes.Status400BadRequest, $"cursor: {e.Message}");
        }
    }

    /// <summary>Reads the optional <c>after</c> (the previous snapshot page's token): null when absent.</summary>
    public static SyncError? ReadSnapshotToken(HttpContext context, out BucketSnapshotToken? after)
    {
        after = null;
        if (!context.Request.Query.TryGetValue("after", out var text))
            return null;
        if (text.Count != 1)
            return new SyncError(StatusCodes.Status400BadRequest, "Send one after token.");
        try
        {
            after = BucketSnapshotToken.Parse(text[0]!);
            return null;
        }
        catch (FormatException e)
        {
            return new SyncError(StatusCodes.Status400BadRequest, $"after: {e.Message}");
        }
    }

    /// <summary>NDJSON when the client asks for it (<c>Accept: application/x-ndjson</c>), else JSON.</summary>
    public static bool WantsNdjson(HttpRequest request)
    {
        foreach (var accepted in request.GetTypedHeaders().Accept)
        {
            if (accepted.MediaType.Equals(NdjsonMediaType, StringComparison.OrdinalIgnoreCase) && accepted.Quality is not 0)
                return true;
        }
        return false;
    }
}
