using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;

namespace Synchro.Pipeline.Samples.Tests.SyncServer;

/// <summary>
/// An offline-first client of the sample's sync endpoints: it holds, per bucket, the records in it, loads them from
/// snapshot pages, then applies pulled changes (put adds, remove removes) — the loop samples/README.md describes.
/// </summary>
internal sealed class SyncClient(HttpClient http, string user, IReadOnlyList<string> buckets, bool ndjson, int limit)
{
    private long _lastSeq;

    /// <summary>Per bucket, the records (<c>table/id</c>) the client holds.</summary>
    public Dictionary<string, HashSet<string>> Members { get; } = buckets.ToDictionary(b => b, _ => new HashSet<string>(StringComparer.Ordinal), StringComparer.Ordinal);

    public IReadOnlyList<string> Buckets => buckets;

    public string? Cursor { get; private set; }

    public int SnapshotPages { get; private set; }

    public int Pulls { get; private set; }

    public long RowsApplied { get; private set; }

    /// <summary>
    /// Loads <paramref name="resync"/> (default: all the client's buckets, with no cursor: a new client) from snapshot pages,
    /// replacing what the client held of them; then the cursor is the last page's.
    /// </summary>
    public async Task SnapshotAsync(IReadOnlyList<string>? resync = null)
    {
        var loading = resync ?? buckets;
        foreach (var bucket in loading)
            Members[bucket].Clear();
        // A new client sends no cursor; one that resyncs some buckets sends its own, to have them merged in.
        var cursor = resync is null ? null : Cursor;
        string? after = null;
        while (true)
        {
            var query = Query(loading, ("limit", limit.ToString(System.Globalization.CultureInfo.InvariantCulture)), ("after", after), ("cursor", cursor));
            using var response = await SendAsync("sync/snapshot?" + query);
            await EnsureOkAsync(response);
            SnapshotPages++;
            string? next = null;
            string? last = null;
            foreach (var item in await ReadItemsAsync(response, "members"))
            {
                if (item.TryGetProperty("bucket", out var bucket))
                {
                    Assert.Contains(bucket.GetString()!, loading);
                    Members[bucket.GetString()!].Add(item.GetProperty("table").GetString() + "/" + item.GetProperty("id").GetString());
                }
                else
                {
                    next = item.GetProperty("after").GetString();
                    last = item.GetProperty("cursor").GetString();
                }
            }
            if (next is null)
            {
                Cursor = last ?? throw new InvalidOperationException("The last snapshot page gave no cursor.");
                return;
            }
            Assert.Null(last);
            after = next;
        }
    }

    /// <summary>One pull: applies the rows and moves the cursor, or returns the server's resync answer (409).</summary>
    public async Task<PullResult> PullAsync()
    {
        using var response = await SendAsync("sync/changes?" + Query(buckets, ("limit", limit.ToString(System.Globalization.CultureInfo.InvariantCulture)), ("cursor", Cursor)));
        Pulls++;
        if (response.StatusCode == HttpStatusCode.Conflict)
        {
            using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
            return new PullResult(0, false, [.. body.RootElement.GetProperty("resync").EnumerateArray().Select(b => b.GetString()!)], body.RootElement.GetProperty("reason").GetString());
        }
        await EnsureOkAsync(response);
        var rows = 0;
        var hasMore = false;
        string? next = null;
        foreach (var item in await ReadItemsAsync(response, "rows"))
        {
            if (item.TryGetProperty("seq", out var seq))
            {
                // Rows come in seq order, across pages too.
                Assert.True(seq.GetInt64() > _lastSeq, $"seq {seq.GetInt64()} after {_lastSeq}");
                _lastSeq = seq.GetInt64();
                var bucket = item.GetProperty("bucket").GetString()!;
                var record = item.GetProperty("table").GetString() + "/" + item.GetProperty("id").GetString();
                switch (item.GetProperty("op").GetString())
                {
                    case "put":
                        Members[bucket].Add(record);
                        break;
                    case "remove":
                        Members[bucket].Remove(record);
                        break;
                    default:
                        Assert.Fail($"Unknown op in {item}");
                        break;
                }
                rows++;
            }
            else
            {
                next = item.GetProperty("cursor").GetString();
                hasMore = item.GetProperty("hasMore").GetBoolean();
            }
        }
        Cursor = next ?? throw new InvalidOperationException("The page gave no cursor.");
        RowsApplied += rows;
        return new PullResult(rows, hasMore, null, null);
    }

    /// <summary>Whether the client holds <paramref name="record"/> in <paramref name="bucket"/>.</summary>
    public bool Holds(string bucket, string record) => Members[bucket].Contains(record);

    public Task<HttpResponseMessage> SendAsync(string pathAndQuery)
    {
        var request = new HttpRequestMessage(HttpMethod.Get, pathAndQuery);
        request.Headers.Add("X-Sync-User", user);
        if (ndjson)
            request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/x-ndjson"));
        return http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
    }

    /// <summary>
    /// The body's items in order: in JSON the elements of <paramref name="arrayName"/>, then the document without it; in
    /// NDJSON each line. The last item is the page's trailer (cursor, or snapshot token).
    /// </summary>
    private async Task<List<JsonElement>> ReadItemsAsync(HttpResponseMessage response, string arrayName)
    {
        var items = new List<JsonElement>();
        if (ndjson)
        {
            Assert.Equal("application/x-ndjson", response.Content.Headers.ContentType?.MediaType);
            using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
            while (await reader.ReadLineAsync() is { } line)
            {
                Assert.NotEqual("", line);
                items.Add(JsonDocument.Parse(line).RootElement.Clone());
            }
            return items;
        }
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        var document = JsonDocument.Parse(await response.Content.ReadAsStreamAsync()).RootElement.Clone();
        items.AddRange(document.GetProperty(arrayName).EnumerateArray());
        items.Add(document);
        return items;
    }

    private static async Task EnsureOkAsync(HttpResponseMessage response)
    {
        if (response.StatusCode != HttpStatusCode.OK)
            Assert.Fail($"{response.RequestMessage?.RequestUri} answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
    }

    private static string Query(IEnumerable<string> buckets, params (string Name, string? Value)[] parameters)
        => string.Join('&', buckets.Select(b => "bucket=" + Uri.EscapeDataString(b))
            .Concat(parameters.Where(p => p.Value is not null).Select(p => p.Name + "=" + Uri.EscapeDataString(p.Value!))));
}

/// <summary>What one pull did: rows applied and whether more wait, or the buckets to resync and why.</summary>
internal sealed record PullResult(int Rows, bool HasMore, IReadOnlyList<string>? Resync, string? Reason);
