using Npgsql;
using NpgsqlTypes;
using Synchro.Pipeline.Pipeline;

namespace Synchro.Pipeline.LoadHarness.Backlog;

/// <summary>
/// One source transaction inserting <c>rows</c> orders (owned rows: one changelog row and one edge each), behind a
/// slot of its own created just before it: what the pipeline must drain within its memory budget however large.
/// </summary>
internal static class BigTransaction
{
    public const string Slot = "bench_big_transaction";

    private static readonly TimeSpan s_flushPoll = TimeSpan.FromMilliseconds(50);

    /// <returns>The insert position after its commit: the pipeline has drained it once its committed position reaches it.</returns>
    public static async Task<string> GenerateAsync(string connectionString, long rows, CancellationToken ct)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(ct);
        await using (var create = new NpgsqlCommand("SELECT pg_create_logical_replication_slot($1, 'pgoutput')", connection))
        {
            create.Parameters.AddWithValue(Slot);
            await create.ExecuteNonQueryAsync(ct);
        }
        await using (var insert = new NpgsqlCommand(
            "INSERT INTO orders (user_id, title) SELECT 'u' || (g % 1000 + 1), 'big transaction order ' || g FROM generate_series(1, $1) g", connection))
        {
            insert.Parameters.AddWithValue(rows);
            insert.CommandTimeout = 0;
            await insert.ExecuteNonQueryAsync(ct);
        }
        var end = await ScalarAsync(connection, "SELECT pg_current_wal_insert_lsn()", ct);
        // As after the backlog: a heartbeat past the end moves the pipeline's position there, and the end must be flushed to be decoded.
        await using (var marker = new NpgsqlCommand($"SELECT pg_logical_emit_message(false, '{LsnCommitter.HeartbeatPrefix}', 'load-harness big transaction end')", connection))
            await marker.ExecuteNonQueryAsync(ct);
        var markerEnd = await ScalarAsync(connection, "SELECT pg_current_wal_insert_lsn()", ct);
        while (await ScalarAsync(connection, "SELECT pg_current_wal_flush_lsn()", ct) < markerEnd)
            await Task.Delay(s_flushPoll, ct);
        return end.ToString();
    }

    private static async Task<NpgsqlLogSequenceNumber> ScalarAsync(NpgsqlConnection connection, string sql, CancellationToken ct)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        return (NpgsqlLogSequenceNumber)(await command.ExecuteScalarAsync(ct))!;
    }
}
