using Npgsql;
using Synchro.Pipeline.Tests.Pipeline;

namespace Synchro.Pipeline.Tests.Infrastructure;

/// <summary>Positions and waits shared by the operations tests (LSNs as bytes since 0/0).</summary>
internal static class OperationsSql
{
    private const string ActiveWalSender = "FROM pg_stat_replication r JOIN pg_replication_slots s ON s.active_pid = r.pid WHERE s.slot_name = @s";

    public static Task<long> CurrentWalAsync(string connectionString)
        => Sql.ScalarAsync<long>(connectionString, "SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint");

    public static async Task<long?> SlotConfirmedAsync(string connectionString, string slot)
        => await Sql.ScalarAsync<object>(connectionString, "SELECT (confirmed_flush_lsn - '0/0'::pg_lsn)::bigint FROM pg_replication_slots WHERE slot_name = @s", ("s", slot)) as long?;

    /// <summary>How far the walsender streaming from <paramref name="slot"/> has read the WAL (<c>sent_lsn</c>); null when none streams.</summary>
    public static async Task<long?> SentAsync(string connectionString, string slot)
        => await Sql.ScalarAsync<object>(connectionString, "SELECT (r.sent_lsn - '0/0'::pg_lsn)::bigint " + ActiveWalSender, ("s", slot)) as long?;

    /// <summary>Whether the walsender of <paramref name="slot"/> received a status update sent after <paramref name="since"/> (server time).</summary>
    public static Task<bool> RepliedSinceAsync(string connectionString, string slot, DateTime since)
        => Sql.ScalarAsync<bool>(connectionString, "SELECT EXISTS (SELECT " + ActiveWalSender + " AND r.reply_time > @t)", ("s", slot), ("t", since));

    public static async Task<long?> PersistedAsync(string connectionString, string slot)
        => await Sql.ScalarAsync<object>(connectionString, "SELECT confirmed_lsn FROM sync_wal_position WHERE slot_name = @s", ("s", slot)) as long?;

    /// <summary>Polls <paramref name="condition"/> until it holds; fails with <paramref name="what"/> after <paramref name="timeout"/>.</summary>
    public static async Task WaitUntilAsync(Func<Task<bool>> condition, string what, TimeSpan timeout, PipelineHarness? harness = null)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!await condition())
        {
            if (harness?.Running is { IsFaulted: true } failed)
                await failed;
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"Timed out after {timeout.TotalSeconds} s waiting for {what}.");
            await Task.Delay(50);
        }
    }

    /// <summary>Waits until a walsender streams from <paramref name="slot"/>.</summary>
    public static Task WaitStreamingAsync(string connectionString, string slot, Task running)
        => WaitUntilAsync(async () =>
        {
            if (running.IsCompleted)
                await running;
            return await Sql.ScalarAsync<bool>(connectionString, PipelineHostProcess.SlotStreamingQuery.Replace("$1", "@s", StringComparison.Ordinal), ("s", slot));
        }, $"slot {slot} to stream", TimeSpan.FromSeconds(30));

    /// <summary>Small transactions into a table of another database until cancelled: WAL the slot's walsender never sends.</summary>
    public static async Task WriteContinuouslyAsync(string connectionString, CancellationToken cancellationToken)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(cancellationToken);
        await using (var create = new NpgsqlCommand("CREATE TABLE IF NOT EXISTS noise (id bigserial PRIMARY KEY, payload text)", connection))
            await create.ExecuteNonQueryAsync(cancellationToken);
        await using var insert = new NpgsqlCommand("INSERT INTO noise (payload) SELECT repeat('x', 200) FROM generate_series(1, 50)", connection);
        try
        {
            while (!cancellationToken.IsCancellationRequested)
                await insert.ExecuteNonQueryAsync(cancellationToken);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
    }
}
