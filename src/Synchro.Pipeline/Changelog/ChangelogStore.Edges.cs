using Npgsql;

namespace Synchro.Pipeline.Changelog;

internal static partial class ChangelogStore
{
    // Rows name the record by its position in the parameters, so no key text comes back. OFFSET 0 keeps the
    // subquery a primary-key lookup per record: as a plain join it is planned as a hash join over the whole table.
    private const string LoadEdgesSql = """
        SELECT k.ord::int, e.bucket_id
        FROM ROWS FROM (pg_catalog.unnest($1::text[]), pg_catalog.unnest($2::text[])) WITH ORDINALITY AS k(table_name, record_id, ord)
        CROSS JOIN LATERAL (
            SELECT bucket_id FROM sync_bucket_edges
            WHERE table_name = k.table_name AND record_id = k.record_id
            OFFSET 0) e
        """;

    // One primary-key probe per edge, then a TID scan: a join (or IN) is planned from the table's statistics, and with them
    // behind a growing table it became a hash join over every edge, once per batch.
    internal const string DeleteEdgesSql = """
        DELETE FROM sync_bucket_edges
        WHERE ctid = ANY (ARRAY(
            SELECT e.ctid
            FROM ROWS FROM (pg_catalog.unnest($1::text[]), pg_catalog.unnest($2::text[]), pg_catalog.unnest($3::text[])) AS k(table_name, record_id, bucket_id)
            CROSS JOIN LATERAL (
                SELECT ctid FROM sync_bucket_edges
                WHERE table_name = k.table_name AND record_id = k.record_id AND bucket_id = k.bucket_id
                OFFSET 0) e))
        """;

    private const string CopyEdgesSql =
        "COPY sync_bucket_edges (table_name, record_id, bucket_id) FROM STDIN (FORMAT BINARY)";

    /// <summary>The buckets each of <paramref name="records"/> is in now, with one query.</summary>
    /// <returns>Bucket ids by record, in no particular order; records in no bucket are absent.</returns>
    public static async Task<Dictionary<RecordKey, List<string>>> LoadEdgesAsync(
        NpgsqlConnection connection, IReadOnlyList<RecordKey> records, CancellationToken ct)
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
                    var key = records[reader.GetInt32(0) - 1];
                    if (!edges.TryGetValue(key, out var buckets))
                        edges.Add(key, buckets = new List<string>(1));
                    var bucket = reader.GetString(1);
                    // A record asked for twice comes back twice.
                    if (!buckets.Contains(bucket, StringComparer.Ordinal))
                        buckets.Add(bucket);
                }
            }
        }
        return edges;
    }

    /// <summary>
    /// Removes the <paramref name="removed"/> edges with one statement, then stores the <paramref name="added"/>
    /// ones with one binary COPY.
    /// </summary>
    /// <remarks>
    /// The added edges must be absent and distinct: the writer adds only edges missing from what it loaded for
    /// the batch's records in the same transaction, and it is the only writer of the table (one pipeline per
    /// changelog). That is what lets a plain COPY replace an upsert; an edge that exists anyway violates the
    /// primary key and aborts the caller's transaction, never silently duplicating. Removals go first, so an
    /// edge in both lists ends up present. Removing an absent edge is harmless.
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
        await CopyAsync(connection, CopyEdgesSql, added, EncodeEdgeRow, ct).ConfigureAwait(false);
    }

    private static (string[] Tables, string[] Ids) Columns(IReadOnlyList<RecordKey> records)
    {
        var tables = new string[records.Count];
        var ids = new string[records.Count];
        for (var i = 0; i < records.Count; i++)
        {
            tables[i] = records[i].TableName;
            ids[i] = records[i].RecordId;
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
