using System.Globalization;
using Npgsql;
using NpgsqlTypes;
using Synchro.Pipeline.Protocol;
using Synchro.Pipeline.Decoding;

namespace Synchro.Pipeline.LoadHarness.Backlog;

/// <summary>
/// Creates one slot per contender (plus one the harness decodes itself to count the backlog), then
/// writes the backlog with pgbench, so every slot holds the identical WAL.
/// </summary>
internal static class BacklogGenerator
{
    private const string MeasureSlot = "bench_measure";
    private const int BacklogClients = 2;
    private static readonly TimeSpan s_flushPoll = TimeSpan.FromMilliseconds(20);

    /// <remarks>
    /// <c>decode</c> false skips decoding the backlog on the server to count its changes and pgoutput bytes (minutes at 10M
    /// changes): <see cref="BacklogInfo.Changes"/> is then <see cref="BenchWorkload.ChangesPerTransaction"/> per transaction
    /// pgbench committed, <see cref="BacklogInfo.PgoutputBytes"/> is 0, and <see cref="BacklogInfo.LastCommitEndLsn"/> is the
    /// end marker's position (the pipeline commits past the marker, so it still stops a drain).
    /// </remarks>
    public static async Task<BacklogInfo> GenerateAsync(string binDirectory, string connectionString, IEnumerable<string> slots, long changes, CancellationToken ct, bool decode = true)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(ct);
        foreach (var slot in decode ? slots.Append(MeasureSlot) : slots)
            await CreateSlotAsync(connection, slot, ct);
        var start = await ScalarAsync<NpgsqlLogSequenceNumber>(connection, "SELECT pg_current_wal_lsn()", ct);

        var transactions = (changes + BenchWorkload.ChangesPerTransaction - 1) / BenchWorkload.ChangesPerTransaction;
        var perClient = (transactions + BacklogClients - 1) / BacklogClients;
        var pgbench = await Pgbench.RunAsync(binDirectory, connectionString,
            ["-c", Invariant(BacklogClients), "-j", Invariant(BacklogClients), "-t", Invariant(perClient)], ct);

        // The insert position, not pg_current_wal_lsn(): with synchronous_commit=off (the throwaway server's
        // default) the write position trails the last commits by up to wal_writer_delay.
        var end = await MarkEndAsync(connection, "load-harness end", ct);
        if (!decode)
        {
            return new BacklogInfo(pgbench.Transactions, pgbench.Transactions * BenchWorkload.ChangesPerTransaction, start.ToString(), end.ToString(),
                end.ToString(), (long)((ulong)end - (ulong)start), 0, pgbench.Seconds, pgbench.Tps);
        }

        // Decoded by the server up to the end LSN: the exact change count and pgoutput volume, independent of any contender.
        await using var measure = new NpgsqlCommand("""
            SELECT count(*) FILTER (WHERE get_byte(data, 0) IN (73, 85, 68)), coalesce(sum(length(data)), 0)::bigint,
                   max(('x' || encode(substring(data FROM 11 FOR 8), 'hex'))::bit(64)::bigint) FILTER (WHERE get_byte(data, 0) = 67)
            FROM pg_logical_slot_get_binary_changes($1, $2::pg_lsn, NULL, 'proto_version', '1', 'publication_names', $3)
            """, connection);
        measure.Parameters.AddWithValue(MeasureSlot);
        measure.Parameters.AddWithValue(end.ToString());
        measure.Parameters.AddWithValue(BenchSchema.Publication);
        measure.CommandTimeout = 0;
        long counted, bytes, lastCommitEnd;
        await using (var reader = await measure.ExecuteReaderAsync(ct))
        {
            await reader.ReadAsync(ct);
            counted = reader.GetInt64(0);
            bytes = reader.GetInt64(1);
            // A pgoutput Commit is 'C', flags, commit LSN, end LSN, timestamp: the end LSN is at offset 10.
            lastCommitEnd = reader.GetInt64(2);
        }
        await using (var drop = new NpgsqlCommand("SELECT pg_drop_replication_slot($1)", connection))
        {
            drop.Parameters.AddWithValue(MeasureSlot);
            await drop.ExecuteNonQueryAsync(ct);
        }

        return new BacklogInfo(pgbench.Transactions, counted, start.ToString(), end.ToString(), new Lsn((ulong)lastCommitEnd).ToString(),
            (long)((ulong)end - (ulong)start), bytes, pgbench.Seconds, pgbench.Tps);
    }

    public static async Task CreateSlotAsync(NpgsqlConnection connection, string slot, CancellationToken ct)
    {
        await using var create = new NpgsqlCommand("SELECT pg_create_logical_replication_slot($1, 'pgoutput')", connection);
        create.Parameters.AddWithValue(slot);
        await create.ExecuteNonQueryAsync(ct);
    }

    /// <summary>
    /// The insert position now, then the end marker after it: a non-transactional heartbeat message every contender stops
    /// on (the pipeline commits past it); returns once the marker is flushed, since decoding reads only flushed WAL.
    /// </summary>
    public static async Task<NpgsqlLogSequenceNumber> MarkEndAsync(NpgsqlConnection connection, string marker, CancellationToken ct)
    {
        var end = await ScalarAsync<NpgsqlLogSequenceNumber>(connection, "SELECT pg_current_wal_insert_lsn()", ct);
        await using (var message = new NpgsqlCommand($"SELECT pg_logical_emit_message(false, '{HeartbeatMessage.Prefix}', $1)", connection))
        {
            message.Parameters.AddWithValue(marker);
            await message.ExecuteNonQueryAsync(ct);
        }
        var markerEnd = await ScalarAsync<NpgsqlLogSequenceNumber>(connection, "SELECT pg_current_wal_insert_lsn()", ct);
        while (await ScalarAsync<NpgsqlLogSequenceNumber>(connection, "SELECT pg_current_wal_flush_lsn()", ct) < markerEnd)
            await Task.Delay(s_flushPoll, ct);
        return end;
    }

    public static async Task DropSlotsAsync(string connectionString, IEnumerable<string> slots, CancellationToken ct)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(ct);
        foreach (var slot in slots)
        {
            await using var drop = new NpgsqlCommand("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1 AND NOT active", connection);
            drop.Parameters.AddWithValue(slot);
            await drop.ExecuteNonQueryAsync(ct);
        }
    }

    private static async Task<T> ScalarAsync<T>(NpgsqlConnection connection, string sql, CancellationToken ct)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        return (T)(await command.ExecuteScalarAsync(ct))!;
    }

    private static string Invariant(long value) => value.ToString(CultureInfo.InvariantCulture);
}
