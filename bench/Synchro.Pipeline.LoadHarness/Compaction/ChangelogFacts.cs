using Npgsql;
using NpgsqlTypes;

namespace Synchro.Pipeline.LoadHarness.Compaction;

/// <summary>
/// The changelog's rows and on-disk sizes at one moment: <c>pg_relation_size</c> of the table and of each index, and
/// <c>pg_total_relation_size</c> (table, indexes, TOAST, free space and visibility maps).
/// </summary>
internal sealed record ChangelogSizes(long Rows, long TableBytes, IReadOnlyDictionary<string, long> IndexBytes, long TotalBytes);

/// <summary>What compaction should remove, counted with a window over every row before it runs.</summary>
/// <param name="Keys">Distinct (bucket_id, table_name, record_id).</param>
/// <param name="Superseded">Rows with a later row of the same key.</param>
/// <param name="LatestDeletes">Delete rows that are the latest of their key.</param>
/// <param name="ExpiredDeletes">Of those, the ones older than the retention.</param>
/// <param name="Seconds">The count's time.</param>
internal sealed record ExpectedRemovals(long Keys, long Superseded, long LatestDeletes, long ExpiredDeletes, double Seconds)
{
    public long Total => Superseded + ExpiredDeletes;
}

/// <summary>The changelog's per-bucket horizons after compaction.</summary>
internal sealed record HorizonFacts(long Buckets, long MaxHorizonSeq);

/// <summary>Queries on the pipeline's changelog in the source database (schema public).</summary>
internal static class ChangelogFacts
{
    public static async Task<ChangelogSizes> SizesAsync(NpgsqlConnection connection, CancellationToken ct)
    {
        var rows = await ScalarAsync<long>(connection, "SELECT count(*) FROM sync_changelog", ct);
        var table = await ScalarAsync<long>(connection, "SELECT pg_relation_size('sync_changelog')", ct);
        var total = await ScalarAsync<long>(connection, "SELECT pg_total_relation_size('sync_changelog')", ct);
        var indexes = new SortedDictionary<string, long>(StringComparer.Ordinal);
        await using var command = new NpgsqlCommand("""
            SELECT c.relname, pg_relation_size(c.oid) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
            WHERE i.indrelid = 'sync_changelog'::regclass
            """, connection);
        await using (var reader = await command.ExecuteReaderAsync(ct))
        {
            while (await reader.ReadAsync(ct))
                indexes[reader.GetString(0)] = reader.GetInt64(1);
        }
        return new ChangelogSizes(rows, table, indexes, total);
    }

    /// <summary>The rows whose <c>created_at</c> is older than <paramref name="age"/>, and the largest seq among them.</summary>
    public static async Task<(long Rows, long UpToSeq)> OlderThanAsync(NpgsqlConnection connection, TimeSpan age, CancellationToken ct)
    {
        await using var command = new NpgsqlCommand("SELECT count(*), coalesce(max(seq), 0) FROM sync_changelog WHERE created_at < now() - $1", connection) { CommandTimeout = 0 };
        command.Parameters.AddWithValue(age);
        await using var reader = await command.ExecuteReaderAsync(ct);
        await reader.ReadAsync(ct);
        return (reader.GetInt64(0), reader.GetInt64(1));
    }

    public static async Task<ExpectedRemovals> ExpectedRemovalsAsync(NpgsqlConnection connection, TimeSpan retention, CancellationToken ct)
    {
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        // One sort of every row, in memory rather than spilled (the throwaway server has the room).
        await ExecuteAsync(connection, "SET work_mem = '512MB'", ct);
        await using var command = new NpgsqlCommand("""
            SELECT count(*) FILTER (WHERE rn = 1), count(*) FILTER (WHERE rn > 1),
                   count(*) FILTER (WHERE rn = 1 AND operation = 3),
                   count(*) FILTER (WHERE rn = 1 AND operation = 3 AND created_at < now() - $1)
            FROM (SELECT operation, created_at,
                         row_number() OVER (PARTITION BY bucket_id, table_name, record_id ORDER BY seq DESC) AS rn
                  FROM sync_changelog) s
            """, connection) { CommandTimeout = 0 };
        command.Parameters.AddWithValue(retention);
        await using var reader = await command.ExecuteReaderAsync(ct);
        await reader.ReadAsync(ct);
        var result = new ExpectedRemovals(reader.GetInt64(0), reader.GetInt64(1), reader.GetInt64(2), reader.GetInt64(3),
            System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalSeconds);
        await reader.DisposeAsync();
        await ExecuteAsync(connection, "RESET work_mem", ct);
        return result;
    }

    public static async Task<HorizonFacts> HorizonsAsync(NpgsqlConnection connection, CancellationToken ct)
    {
        await using var command = new NpgsqlCommand("SELECT count(*), coalesce(max(horizon_seq), 0) FROM sync_bucket_horizons", connection);
        await using var reader = await command.ExecuteReaderAsync(ct);
        await reader.ReadAsync(ct);
        return new HorizonFacts(reader.GetInt64(0), reader.GetInt64(1));
    }

    /// <summary>The WAL insert position: unlike <c>pg_current_wal_lsn()</c> it does not trail asynchronous commits.</summary>
    public static async Task<NpgsqlLogSequenceNumber> WalInsertLsnAsync(NpgsqlConnection connection, CancellationToken ct)
        => await ScalarAsync<NpgsqlLogSequenceNumber>(connection, "SELECT pg_current_wal_insert_lsn()", ct);

    public static async Task ExecuteAsync(NpgsqlConnection connection, string sql, CancellationToken ct)
    {
        await using var command = new NpgsqlCommand(sql, connection) { CommandTimeout = 0 };
        await command.ExecuteNonQueryAsync(ct);
    }

    public static async Task<T> ScalarAsync<T>(NpgsqlConnection connection, string sql, CancellationToken ct)
    {
        await using var command = new NpgsqlCommand(sql, connection) { CommandTimeout = 0 };
        return (T)(await command.ExecuteScalarAsync(ct))!;
    }
}
