using System.Diagnostics;
using Npgsql;
using NpgsqlTypes;
using Synchro.Pipeline.LoadHarness.SteadyState;
using Synchro.Pipeline.LoadHarness.Walsender;

namespace Synchro.Pipeline.LoadHarness.Idle;

/// <summary>
/// The pipeline on a slot of its own, in this process, after one source transaction it has committed, then left
/// alone for a fixed time with nothing else writing: the WAL, the changelog batches, the position moves and the
/// walsender CPU it costs when there is nothing to do. The source (and changelog) database is vacuumed first, so
/// autovacuum has nothing left from the earlier phases.
/// </summary>
/// <remarks>
/// A FOR ALL TABLES publication with the changelog in the source database publishes the pipeline's own position
/// writes back to it, so each can be decoded and answered by another: the window shows whether that loop runs.
/// </remarks>
internal static class IdleRunner
{
    public const string Slot = "bench_idle";

    private static readonly TimeSpan s_poll = TimeSpan.FromMilliseconds(10);

    // pg_stat_activity is read every tenth poll (100 ms) for autovacuum workers.
    private const int AutovacuumEvery = 10;

    // After the catch-up's heartbeats, before the window: their commits are not the idle pipeline's.
    private static readonly TimeSpan s_settle = TimeSpan.FromSeconds(1);

    /// <summary>The idle window of <c>seconds</c>; the pipeline writes into <c>changelogConnectionString</c>, or the source database when it is null.</summary>
    public static async Task<IdleResult> RunAsync(string sourceConnectionString, string? changelogConnectionString, int seconds, TimeSpan catchUpTimeout,
        bool binaryTuples, bool filterOriginsOnServer, CancellationToken ct)
    {
        // What the earlier phases left to autovacuum is done now, so its WAL stays out of the window (what it still does
        // there is listed in the result).
        await VacuumAsync(sourceConnectionString, ct);
        if (changelogConnectionString is not null)
            await VacuumAsync(changelogConnectionString, ct);
        await SteadyStateRunner.CreateSlotAsync(sourceConnectionString, Slot, ct);
        await using var pipeline = new WalPipeline(SteadyStateRunner.PipelineOptions(sourceConnectionString, changelogConnectionString, Slot, binaryTuples, filterOriginsOnServer));
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var run = pipeline.RunAsync(stop.Token);
        try
        {
            await SteadyStateRunner.WaitForRunningAsync(pipeline, run, ct);
            await using var source = new NpgsqlConnection(sourceConnectionString);
            await source.OpenAsync(ct);
            // As if the application had just written: the pipeline goes idle after a commit of its own.
            await using (var write = new NpgsqlCommand("INSERT INTO orders (user_id, title) VALUES ('u1', 'before the idle phase')", source))
                await write.ExecuteNonQueryAsync(ct);
            await SteadyStateRunner.WaitForCatchUpAsync(sourceConnectionString, pipeline, run, catchUpTimeout, ct);
            await Task.Delay(s_settle, ct);

            await using var changelog = new NpgsqlConnection(changelogConnectionString ?? sourceConnectionString);
            await changelog.OpenAsync(ct);
            await using var walsender = await WalsenderCpu.StartAsync(sourceConnectionString, Slot, ct);
            var walStart = await InsertLsnAsync(source, ct);
            var writesStart = await PositionWritesAsync(changelog, ct);
            var first = pipeline.GetStatus();
            var position = first.CommittedLsn;
            var moves = 0L;
            var autovacuum = new SortedSet<string>(StringComparer.Ordinal);
            var clock = Stopwatch.StartNew();
            for (var poll = 0; clock.Elapsed.TotalSeconds < seconds; poll++)
            {
                SteadyStateRunner.ThrowIfStopped(run, pipeline);
                var now = pipeline.GetStatus().CommittedLsn;
                if (now != position)
                {
                    moves++;
                    position = now;
                }
                if (poll % AutovacuumEvery == 0)
                    await AutovacuumAsync(source, autovacuum, ct);
                await Task.Delay(s_poll, ct);
            }
            await AutovacuumAsync(source, autovacuum, ct);
            var last = pipeline.GetStatus();
            if (last.CommittedLsn != position)
                moves++;
            var walEnd = await InsertLsnAsync(source, ct);
            var writesEnd = await PositionWritesAsync(changelog, ct);
            var usage = walsender is null ? null : await walsender.StopAsync(ct);
            if (usage is { Processes: > 1 })
                HarnessRunner.Progress($"idle: {usage.Processes} walsenders served slot {Slot} (pids {string.Join(", ", usage.Pids)}): a reconnect; their CPU is summed");
            return new IdleResult
            {
                Seconds = seconds,
                WalBytes = (long)((ulong)walEnd - (ulong)walStart),
                Batches = last.Batches - first.Batches,
                Transactions = last.Transactions - first.Transactions,
                ChangesCommitted = last.ChangesCommitted - first.ChangesCommitted,
                PositionMoves = moves,
                PositionAdvanceBytes = (long)(last.CommittedLsn.Value - first.CommittedLsn.Value),
                PositionWrites = writesEnd - writesStart,
                WalsenderCpuSeconds = usage?.CpuSeconds,
                WalsenderProcesses = usage?.Processes,
                Reconnects = last.Reconnects - first.Reconnects,
                Autovacuum = [.. autovacuum],
            };
        }
        finally
        {
            await stop.CancelAsync();
            try
            {
                await run;
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // Already reported through ThrowIfStopped.
            }
        }
    }

    // The insert position, not pg_current_wal_lsn(): with synchronous_commit=off (the throwaway server's default) the
    // write position trails the last commits by up to wal_writer_delay.
    private static async Task<NpgsqlLogSequenceNumber> InsertLsnAsync(NpgsqlConnection connection, CancellationToken ct)
    {
        await using var command = new NpgsqlCommand("SELECT pg_current_wal_insert_lsn()", connection);
        return (NpgsqlLogSequenceNumber)(await command.ExecuteScalarAsync(ct))!;
    }

    private static async Task VacuumAsync(string connectionString, CancellationToken ct)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(ct);
        await using var vacuum = new NpgsqlCommand("VACUUM (ANALYZE)", connection) { CommandTimeout = 0 };
        await vacuum.ExecuteNonQueryAsync(ct);
    }

    /// <summary>Adds what the cluster's autovacuum workers are doing now (<c>database: autovacuum: VACUUM table</c>): their WAL is in the window's too.</summary>
    private static async Task AutovacuumAsync(NpgsqlConnection connection, SortedSet<string> seen, CancellationToken ct)
    {
        await using var command = new NpgsqlCommand(
            "SELECT datname || ': ' || query FROM pg_stat_activity WHERE backend_type = 'autovacuum worker' AND query <> ''", connection);
        await using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
            seen.Add(reader.GetString(0));
    }

    private static async Task<long> PositionWritesAsync(NpgsqlConnection connection, CancellationToken ct)
    {
        await using var command = new NpgsqlCommand(
            "SELECT coalesce(sum(n_tup_ins + n_tup_upd), 0)::bigint FROM pg_stat_user_tables WHERE relname = 'sync_wal_position'", connection);
        return (long)(await command.ExecuteScalarAsync(ct))!;
    }
}
