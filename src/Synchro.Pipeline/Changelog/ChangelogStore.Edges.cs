using Npgsql;
using NpgsqlTypes;

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

    private const string CopyEdgesSql =
        "COPY sync_bucket_edges (table_name, record_id, bucket_id) FROM STDIN (FORMAT BINARY)";

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
        if (added.Count == 0)
            return;
        var importer = await connection.BeginBinaryImportAsync(CopyEdgesSql, ct).ConfigureAwait(false);
        await using (importer.ConfigureAwait(false))
        {
            for (var i = 0; i < added.Count; i++)
            {
                var (record, bucket) = added[i];
                await importer.StartRowAsync(ct).ConfigureAwait(false);
                await importer.WriteAsync(record.TableName, NpgsqlDbType.Text, ct).ConfigureAwait(false);
                await importer.WriteAsync(record.RecordId, NpgsqlDbType.Text, ct).ConfigureAwait(false);
                await importer.WriteAsync(bucket, NpgsqlDbType.Text, ct).ConfigureAwait(false);
            }
            await importer.CompleteAsync(ct).ConfigureAwait(false);
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
