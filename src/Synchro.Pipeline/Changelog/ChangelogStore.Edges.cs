using Npgsql;

namespace Synchro.Pipeline.Changelog;

internal static partial class ChangelogStore
{
    private const string LoadEdgesSql = """
        SELECT table_name, record_id, bucket_id
        FROM sync_bucket_edges
        WHERE (table_name, record_id) IN (SELECT * FROM unnest($1::text[], $2::text[]))
        """;

    private const string DeleteEdgesSql = """
        DELETE FROM sync_bucket_edges
        WHERE (table_name, record_id, bucket_id) IN (SELECT * FROM unnest($1::text[], $2::text[], $3::text[]))
        """;

    // DISTINCT: ON CONFLICT DO UPDATE fails when one statement proposes the same key twice, and a
    // repeated edge means nothing more than a single one. Its hash aggregate is about 5 % of the statement
    // (EXPLAIN ANALYZE). Arrays rather than binary COPY into a temporary table: for 100,000 edges (test
    // server with fsync off, 5 interleaved rounds on a shared 2-core machine, medians) this statement stored
    // 40,000 new / 26,000 existing rows/s, COPY-then-INSERT 39,000 / 32,000: no gain beyond the run-to-run
    // noise (±50 %), for one more round trip.
    private const string InsertEdgesSql = """
        INSERT INTO sync_bucket_edges (table_name, record_id, bucket_id)
        SELECT DISTINCT * FROM unnest($1::text[], $2::text[], $3::text[])
        ON CONFLICT (table_name, record_id, bucket_id) DO UPDATE SET updated_at = now()
        """;

    /// <summary>The buckets each of <paramref name="records"/> is in now, with one query.</summary>
    /// <returns>Bucket ids by record, in no particular order; records in no bucket are absent.</returns>
    public static async Task<Dictionary<RecordKey, List<string>>> LoadEdgesAsync(
        NpgsqlConnection connection, IReadOnlyCollection<RecordKey> records, CancellationToken ct)
    {
        var edges = new Dictionary<RecordKey, List<string>>();
        if (records.Count == 0)
            return edges;
        var (tables, ids) = Columns(records);
        var command = new NpgsqlCommand(LoadEdgesSql, connection) { Parameters = { Parameter(tables), Parameter(ids) } };
        await using (command.ConfigureAwait(false))
        {
            var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                while (await reader.ReadAsync(ct).ConfigureAwait(false))
                {
                    var key = new RecordKey(reader.GetString(0), reader.GetString(1));
                    if (!edges.TryGetValue(key, out var buckets))
                        edges.Add(key, buckets = []);
                    buckets.Add(reader.GetString(2));
                }
            }
        }
        return edges;
    }

    /// <summary>
    /// Removes the <paramref name="removed"/> edges, then adds the <paramref name="added"/> ones (refreshing
    /// <c>updated_at</c> of those that exist): one statement each.
    /// </summary>
    /// <remarks>
    /// Removals go first, so an edge in both lists ends up present. Removing an absent edge and repeating
    /// an edge are harmless.
    /// </remarks>
    public static async Task ApplyEdgesAsync(
        NpgsqlConnection connection,
        IReadOnlyList<(RecordKey Record, string BucketId)> added,
        IReadOnlyList<(RecordKey Record, string BucketId)> removed,
        CancellationToken ct)
    {
        if (removed.Count > 0)
        {
            var (tables, ids, buckets) = Columns(removed);
            await ExecuteAsync(connection, DeleteEdgesSql, ct, Parameter(tables), Parameter(ids), Parameter(buckets)).ConfigureAwait(false);
        }
        if (added.Count > 0)
        {
            var (tables, ids, buckets) = Columns(added);
            await ExecuteAsync(connection, InsertEdgesSql, ct, Parameter(tables), Parameter(ids), Parameter(buckets)).ConfigureAwait(false);
        }
    }

    private static (string[] Tables, string[] Ids) Columns(IReadOnlyCollection<RecordKey> records)
    {
        var tables = new string[records.Count];
        var ids = new string[records.Count];
        var i = 0;
        foreach (var record in records)
        {
            tables[i] = record.TableName;
            ids[i] = record.RecordId;
            i++;
        }
        return (tables, ids);
    }

    private static (string[] Tables, string[] Ids, string[] Buckets) Columns(IReadOnlyList<(RecordKey Record, string BucketId)> edges)
    {
        var tables = new string[edges.Count];
        var ids = new string[edges.Count];
        var buckets = new string[edges.Count];
        for (var i = 0; i < edges.Count; i++)
        {
            var (record, bucket) = edges[i];
            tables[i] = record.TableName;
            ids[i] = record.RecordId;
            buckets[i] = bucket;
        }
        return (tables, ids, buckets);
    }
}
