using System.Diagnostics;
using System.Globalization;
using Npgsql;
using NpgsqlTypes;
using Synchro.Pipeline.LoadHarness.Backlog;
using Synchro.Pipeline.LoadHarness.Contenders;
using Synchro.Pipeline.Protocol;
using Synchro.Pipeline.Decoding;

namespace Synchro.Pipeline.LoadHarness.SteadyState;

/// <summary>
/// pgbench unthrottled for a fixed time with no consumer, then with <c>pg_recvlogical</c> consuming (the cost of
/// logical decoding alone: the walsender shares the primary's cores), then with our pipeline consuming live (in
/// this process, so its latency histogram can be listened to), sampling its lag every 100 ms.
/// </summary>
internal static class SteadyStateRunner
{
    public const string Slot = "bench_steady";
    public const string PgRecvLogicalSlot = "bench_steady_recv";

    private static readonly TimeSpan s_sampleInterval = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan s_startTimeout = TimeSpan.FromSeconds(60);

    public static async Task<SteadyStateResult> RunAsync(string binDirectory, string sourceConnectionString, string changelogConnectionString,
        int seconds, int clients, TimeSpan catchUpTimeout, CancellationToken ct, bool binaryTuples = false)
    {
        string[] pgbenchArguments = ["-c", Invariant(clients), "-j", Invariant(Math.Min(clients, Environment.ProcessorCount)), "-T", Invariant(seconds)];
        var without = await Pgbench.RunAsync(binDirectory, sourceConnectionString, pgbenchArguments, ct);
        var withPgRecvLogical = await WithPgRecvLogicalAsync(binDirectory, sourceConnectionString, pgbenchArguments, ct);
        await CreateSlotAsync(sourceConnectionString, Slot, ct);

        using var latency = new LatencyRecorder();
        await using var pipeline = new WalPipeline(new WalPipelineOptions
        {
            ConnectionString = sourceConnectionString,
            ChangelogConnectionString = changelogConnectionString,
            SlotName = Slot,
            PublicationName = BenchSchema.Publication,
            CreateSlotIfMissing = false,
            Tables = BenchSchema.Registry(),
            BinaryTupleMode = binaryTuples,
            ReadCoalescing = SocketCompletions.Inline,
        });
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var run = pipeline.RunAsync(stop.Token);
        try
        {
            var started = Stopwatch.StartNew();
            while (pipeline.GetStatus().State != WalPipelineState.Running)
            {
                ThrowIfStopped(run, pipeline);
                if (started.Elapsed > s_startTimeout)
                    throw new TimeoutException($"the pipeline did not start in {s_startTimeout.TotalSeconds:F0} s");
                await Task.Delay(s_sampleInterval, ct);
            }

            var lagBytes = new List<double>();
            var lagSeconds = new List<double>();
            var bench = Pgbench.RunAsync(binDirectory, sourceConnectionString, pgbenchArguments, ct);
            while (!bench.IsCompleted)
            {
                ThrowIfStopped(run, pipeline);
                var status = pipeline.GetStatus();
                // Before its first commit a fresh slot's pipeline reports its lag against LSN 0, not a real lag.
                if (status.CommittedLsn.IsValid)
                {
                    lagBytes.Add(status.LagBytes);
                    lagSeconds.Add(status.Lag.TotalSeconds);
                }
                await Task.WhenAny(bench, Task.Delay(s_sampleInterval, ct));
            }
            var with = await bench;

            var catchUp = Stopwatch.StartNew();
            await WaitForCatchUpAsync(sourceConnectionString, pipeline, run, catchUpTimeout, ct);
            return new SteadyStateResult
            {
                Seconds = seconds,
                Clients = clients,
                TpsWithout = without.Tps,
                TpsWithPgRecvLogical = withPgRecvLogical.Tps,
                TpsWith = with.Tps,
                LagBytes = Percentiles.Of(lagBytes),
                LagSeconds = Percentiles.Of(lagSeconds),
                LatencyMilliseconds = Percentiles.Of(latency.Snapshot().Select(s => s * 1000)),
                ChangesCommitted = pipeline.GetStatus().ChangesCommitted,
                CatchUpSeconds = catchUp.Elapsed.TotalSeconds,
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
                // Already reported through ThrowIfStopped or the result.
            }
        }
    }

    private static async Task<PgbenchResult> WithPgRecvLogicalAsync(string binDirectory, string connectionString, string[] pgbenchArguments, CancellationToken ct)
    {
        await CreateSlotAsync(connectionString, PgRecvLogicalSlot, ct);
        var start = PgRecvLogicalContender.StartInfo(binDirectory, connectionString, PgRecvLogicalSlot, endLsn: null);
        start.RedirectStandardError = true;
        using var receiver = Process.Start(start) ?? throw new InvalidOperationException("could not start pg_recvlogical");
        var errors = receiver.StandardError.ReadToEndAsync(ct);
        try
        {
            var result = await Pgbench.RunAsync(binDirectory, connectionString, pgbenchArguments, ct);
            if (receiver.HasExited)
                throw new InvalidOperationException($"pg_recvlogical stopped during the run (exit {receiver.ExitCode}): {(await errors).Trim()}");
            return result;
        }
        finally
        {
            if (!receiver.HasExited)
                receiver.Kill();
            await receiver.WaitForExitAsync(CancellationToken.None);
            await BacklogGenerator.DropSlotsAsync(connectionString, [PgRecvLogicalSlot], CancellationToken.None);
        }
    }

    private static async Task CreateSlotAsync(string connectionString, string slot, CancellationToken ct)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(ct);
        await BacklogGenerator.CreateSlotAsync(connection, slot, ct);
    }

    /// <summary>
    /// Until the pipeline has committed everything written before pgbench stopped. The decoder only moves its
    /// position at a commit or at a heartbeat with nothing pending, so a heartbeat is written every interval
    /// until one lands after the last batch.
    /// </summary>
    private static async Task WaitForCatchUpAsync(string connectionString, WalPipeline pipeline, Task run, TimeSpan timeout, CancellationToken ct)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(ct);
        await using var current = new NpgsqlCommand("SELECT pg_current_wal_insert_lsn()", connection);
        Lsn end = (NpgsqlLogSequenceNumber)(await current.ExecuteScalarAsync(ct))!;
        await using var heartbeat = new NpgsqlCommand($"SELECT pg_logical_emit_message(false, '{HeartbeatMessage.Prefix}', 'load-harness')", connection);
        var clock = Stopwatch.StartNew();
        while (pipeline.GetStatus().CommittedLsn < end)
        {
            ThrowIfStopped(run, pipeline);
            if (clock.Elapsed > timeout)
                throw new TimeoutException($"the pipeline did not catch up in {timeout.TotalSeconds:F0} s (committed {pipeline.GetStatus().CommittedLsn}, end {end})");
            await heartbeat.ExecuteNonQueryAsync(ct);
            await Task.Delay(s_sampleInterval, ct);
        }
    }

    private static void ThrowIfStopped(Task run, WalPipeline pipeline)
    {
        if (run.IsCompleted)
            throw new InvalidOperationException($"the pipeline stopped: {pipeline.GetStatus().Failure?.Message ?? run.Exception?.GetBaseException().Message ?? "no error"}");
    }

    private static string Invariant(int value) => value.ToString(CultureInfo.InvariantCulture);
}
