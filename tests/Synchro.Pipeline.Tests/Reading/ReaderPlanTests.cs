using System.Text.Json.Nodes;
using Npgsql;
using NpgsqlTypes;
using Synchro.Pipeline.Tests.Infrastructure;

namespace Synchro.Pipeline.Tests.Reading;

/// <summary>
/// Every statement of the reader is index range scans, whatever the backlog: the plans the server chooses on analysed
/// tables of a realistic shape, read from <c>EXPLAIN (FORMAT JSON)</c>.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class ReaderPlanTests(PostgresServerFixture postgres)
{
    private const string ChangelogIndex = "idx_sync_changelog_bucket_seq";
    private const string EdgesIndex = "idx_sync_bucket_edges_bucket";

    [Fact]
    public async Task Reads_and_snapshots_use_index_range_scans_and_no_sequential_scan()
    {
        await using var db = await ReaderDatabase.CreateAsync(postgres, "reader_plans");
        // 300,000 changelog rows and 150,000 edges over 3,000 buckets, with one hot bucket; horizons for a third of them.
        await db.ExecuteAsync("""
            INSERT INTO sync_changelog (bucket_id, table_name, record_id, operation)
            SELECT CASE WHEN n % 4 = 0 THEN 'b0' ELSE 'b' || (n % 3000) END, 't' || (n % 3), (n % 50000)::text, 1 + n % 3 FROM generate_series(1, 300000) AS n;
            INSERT INTO sync_bucket_edges (table_name, record_id, bucket_id) SELECT 't' || (n % 3), n::text, 'b' || (n % 3000) FROM generate_series(1, 150000) AS n;
            INSERT INTO sync_bucket_horizons (bucket_id, horizon_seq) SELECT 'b' || n, 1 FROM generate_series(0, 2999, 3) AS n;
            ANALYZE sync_changelog; ANALYZE sync_bucket_edges; ANALYZE sync_bucket_horizons;
            """);
        var reader = db.Reader;

        foreach (var count in new[] { 1, 10, 300 })
        {
            var buckets = Enumerable.Range(0, count).Select(i => "b" + (i * 7)).ToArray();
            var after = buckets.Select(_ => 1_000L).ToArray();
            // The first pass (no upper bound) and a later pass (bounded by the first's high-water mark).
            // Pages of a few rows per bucket, and of more rows per bucket than the average bucket holds.
            foreach (var (upTo, perBucket) in new[] { (long.MaxValue, 40), (250_000L, 40), (long.MaxValue, 1_001) })
            {
                var plan = await ExplainAsync(db, reader.ChangesStatement,
                    Array(buckets), Array(after), new NpgsqlParameter<int> { TypedValue = perBucket }, new NpgsqlParameter<long> { TypedValue = upTo },
                    new NpgsqlParameter<string> { TypedValue = "\"public\".sync_changelog" }, new NpgsqlParameter<long> { TypedValue = 1_000 });
                AssertIndexRangeScans(plan, ChangelogIndex, $"read of {count} buckets up to {upTo}");
            }

            var empty = buckets.Select(_ => "").ToArray();
            var continued = buckets.Select((_, i) => i == 0 ? "t1" : "").ToArray();
            foreach (var (tables, records) in new[] { (empty, empty), (continued, buckets.Select((_, i) => i == 0 ? "700" : "").ToArray()) })
            {
                var plan = await ExplainAsync(db, reader.SnapshotStatement, Array(buckets), Array(tables), Array(records), new NpgsqlParameter<int> { TypedValue = 1_001 });
                AssertIndexRangeScans(plan, EdgesIndex, $"snapshot of {count} buckets");
            }
        }
    }

    private static void AssertIndexRangeScans(JsonNode plan, string index, string what)
    {
        var nodes = new List<JsonNode>();
        Collect(plan[0]!["Plan"]!, nodes);
        var text = plan.ToJsonString();
        Assert.False(nodes.Any(n => (string?)n["Node Type"] is "Seq Scan" or "Bitmap Heap Scan"), $"The {what} has a sequential or bitmap scan: {text}");
        Assert.True(nodes.Any(n => (string?)n["Index Name"] == index && ((string?)n["Node Type"])!.StartsWith("Index", StringComparison.Ordinal)),
            $"The {what} does not scan {index}: {text}");
        // Every scan of the tables is an index scan; the changelog's high-water mark comes from the primary key's end.
        foreach (var scan in nodes.Where(n => n["Relation Name"] is not null))
        {
            Assert.True(((string?)scan["Node Type"])!.StartsWith("Index", StringComparison.Ordinal), $"The {what} scans {scan["Relation Name"]} with a {scan["Node Type"]}: {text}");
        }
    }

    private static void Collect(JsonNode node, List<JsonNode> nodes)
    {
        nodes.Add(node);
        if (node["Plans"] is JsonArray children)
        {
            foreach (var child in children)
                Collect(child!, nodes);
        }
    }

    private static NpgsqlParameter Array<T>(T[] values) => new NpgsqlParameter<T[]>
    {
        TypedValue = values,
        NpgsqlDbType = NpgsqlDbType.Array | (typeof(T) == typeof(string) ? NpgsqlDbType.Text : NpgsqlDbType.Bigint),
    };

    private static async Task<JsonNode> ExplainAsync(ReaderDatabase db, string sql, params NpgsqlParameter[] parameters)
    {
        // With the reader's planner settings, in one batch as the reader runs them.
        await using var connection = await db.DataSource.OpenConnectionAsync();
        await using var batch = new NpgsqlBatch(connection) { BatchCommands = { new(Synchro.Pipeline.Reading.ChangelogReader.PlannerSettings), new("EXPLAIN (FORMAT JSON) " + sql) } };
        batch.BatchCommands[1].Parameters.AddRange(parameters);
        await using var reader = await batch.ExecuteReaderAsync();
        await reader.NextResultAsync();
        await reader.ReadAsync();
        return JsonNode.Parse(reader.GetString(0))!;
    }
}
