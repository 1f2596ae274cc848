using System.Diagnostics;
using Npgsql;
using Synchro.Pipeline.LoadHarness.SteadyState;
using Synchro.Pipeline.Reading;

namespace Synchro.Pipeline.LoadHarness.Compaction;

/// <summary>
/// <c>ChangelogReader.ReadAsync</c> page times on the compacted changelog: for 1, 10 and 300 of its busiest buckets, pages
/// of up to <see cref="Limit"/> rows read one after another from the buckets' highest horizon (a cursor below a horizon
/// must resync), starting over from there whenever the reader says it is caught up.
/// </summary>
internal static class ReaderPageTimer
{
    public const int Limit = 1_000;
    private const int WarmUpPages = 10;
    private static readonly int[] s_bucketCounts = [1, 10, 300];

    public static async Task<IReadOnlyList<ReaderPageTimes>> RunAsync(string source, int pages, CancellationToken ct)
    {
        await using var dataSource = NpgsqlDataSource.Create(source);
        var busiest = new List<string>();
        await using (var connection = await dataSource.OpenConnectionAsync(ct))
        await using (var command = new NpgsqlCommand(
            $"SELECT bucket_id FROM sync_changelog GROUP BY bucket_id ORDER BY count(*) DESC, bucket_id LIMIT {s_bucketCounts.Max()}", connection) { CommandTimeout = 0 })
        await using (var reader = await command.ExecuteReaderAsync(ct))
        {
            while (await reader.ReadAsync(ct))
                busiest.Add(reader.GetString(0));
        }

        var changelogReader = new ChangelogReader(dataSource);
        var results = new List<ReaderPageTimes>();
        foreach (var count in s_bucketCounts.Where(c => c <= busiest.Count))
        {
            var buckets = busiest.Take(count).ToArray();
            var start = ChangelogCursor.FromPosition(await HighestHorizonAsync(dataSource, buckets, ct));
            var cursor = start;
            var times = new List<double>(pages);
            long rows = 0;
            for (var i = 0; i < WarmUpPages + pages; i++)
            {
                var began = Stopwatch.GetTimestamp();
                using var page = await changelogReader.ReadAsync(buckets, cursor, Limit, ct);
                var elapsed = Stopwatch.GetElapsedTime(began).TotalMilliseconds;
                if (page.Status != ChangelogReadStatus.Ok)
                    throw new InvalidOperationException($"the reader asked to resync {page.ResyncBuckets.Count} bucket(s) ({page.ResyncReason}) from position {cursor.Position}");
                if (i >= WarmUpPages)
                {
                    times.Add(elapsed);
                    rows += page.Count;
                }
                cursor = page.HasMore ? page.Next : start;
            }
            var p = Percentiles.Of(times)!;
            results.Add(new ReaderPageTimes(count, Limit, pages, (double)rows / pages, p.P50, p.P99, p.Max));
        }
        return results;
    }

    private static async Task<long> HighestHorizonAsync(NpgsqlDataSource dataSource, string[] buckets, CancellationToken ct)
    {
        await using var command = dataSource.CreateCommand("SELECT coalesce(max(horizon_seq), 0) FROM sync_bucket_horizons WHERE bucket_id = ANY($1)");
        command.Parameters.AddWithValue(buckets);
        return (long)(await command.ExecuteScalarAsync(ct))!;
    }
}
