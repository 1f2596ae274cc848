using System.Globalization;
using Npgsql;

namespace Synchro.Pipeline.Changelog;

internal static partial class ChangelogStore
{
    // One statement, all on the server: the client holds nothing whatever the table's size. seq follows the
    // ORDER BY (rows are inserted as the sort returns them); "C" makes that order the same on every database.
    private const string TruncateSql = """
        WITH gone AS (
            DELETE FROM sync_bucket_edges WHERE table_name = $1 AND {0}
            RETURNING record_id, bucket_id)
        INSERT INTO sync_changelog (bucket_id, table_name, record_id, operation)
        SELECT bucket_id, $1, record_id, $2 FROM gone
        ORDER BY record_id COLLATE pg_catalog."C", bucket_id COLLATE pg_catalog."C"
        """;

    /// <summary>
    /// A TRUNCATE of <paramref name="tableName"/> (its changelog name): removes every edge of its records and writes a
    /// delete row in each of those buckets, ordered by record and bucket.
    /// </summary>
    /// <remarks>
    /// <c>partition</c> is null for the whole table; for one partition of it, a boolean expression over <c>record_id</c> that
    /// holds for the records the partition takes (<see cref="Partitions.PartitionFilter.Predicate"/>, server-made text).
    /// </remarks>
    /// <returns>The number of delete rows written.</returns>
    public static async Task<long> TruncateAsync(NpgsqlConnection connection, string tableName, string? partition, CancellationToken ct)
    {
        var sql = string.Format(CultureInfo.InvariantCulture, TruncateSql, partition ?? "true");
        var command = new NpgsqlCommand(sql, connection) { Parameters = { Parameter(tableName), Parameter((short)ChangeOperation.Delete) } };
        await using (command.ConfigureAwait(false))
        {
            var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                await reader.CloseAsync().ConfigureAwait(false);
                return (long)reader.Rows;
            }
        }
    }
}
