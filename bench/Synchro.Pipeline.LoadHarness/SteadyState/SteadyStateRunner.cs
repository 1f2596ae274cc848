using System.Diagnostics;
using System.Globalization;
using Npgsql;
using NpgsqlTypes;
using Synchro.Pipeline.LoadHarness.Backlog;
using Synchro.Pipeline.LoadHarness.Contenders;
using Synchro.Pipeline.LoadHarness.ServerCost;
using Synchro.Pipeline.LoadHarness.Walsender;
using Synchro.Pipeline.Protocol;
using Synchro.Pipeline.Decoding;

namespace Synchro.Pipeline.LoadHarness.SteadyState;

/// <summary>
/// pgbench (unthrottled, or at a given rate) for a fixed time with no consumer, then with <c>pg_recvlogical</c> consuming (the cost of
/// logical decoding alone: the walsender shares the primary's cores), then with our pipeline consuming live (in
/// this process, so its latency histogram can be listened to), sampling its lag and committed changes every 100 ms until it has caught up. The walsender's CPU is
/// read over the run with <c>pg_recvlogical</c> (until it has sent everything pgbench wrote) and over the run with the
/// pipeline (from pgbench's start until the pipeline has caught up).
/// </summary>
internal static class SteadyStateRunner
{
    public const string Slot = "bench_steady";
    public const string PgRecvLogicalSlot = "bench_steady_recv";

    private static readonly TimeSpan s_sampleInterval = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan s_startTimeout = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan s_sentTimeout = TimeSpan.FromSeconds(60);

    /// <summary>
    /// The three runs; the pipeline writes into <c>changelogConnectionString</c>, or the source database when it is null.
    /// With a <paramref name="probe"/>, each run's server cost: the run without a consumer over pgbench's time, the
    /// other two until their consumer has everything, per change pgbench made (the pipeline's: per change it committed).
    /// </summary>
    public static async Task<SteadyStateResult> RunAsync(string binDirectory, string sourceConnectionString, string? changelogConnectionString,
        int seconds, int clients, TimeSpan catchUpTimeout, CancellationToken ct, bool binaryTuples = false, bool filterOriginsOnServer = false,
        ServerCostProbe? probe = null, int? rate = null)
    {
        string[] pgbenchArguments = ["-c", Invariant(clients), "-j", Invariant(Math.Min(clients, Environment.ProcessorCount)), "-T", Invariant(seconds),
            .. rate is { } r ? (string[])["-R", Invariant(r)] : []];
        PgbenchResult without;
        ServerCostResult? withoutCost = null;
        await using (var sampler = await StartCostAsync(probe, ct))
        {
            without = await Pgbench.RunAsync(binDirectory, sourceConnectionString, pgbenchArguments, ct);
            if (sampler is not null)
                withoutCost = await sampler.StopAsync(without.Transactions * BenchWorkload.ChangesPerTransaction, ct);
        }
        var (withPgRecvLogical, recvWalsender, recvCost) = await WithPgRecvLogicalAsync(binDirectory, sourceConnectionString, pgbenchArguments, probe, ct);
        await CreateSlotAsync(sourceConnectionString, Slot, ct);

        using var latency = new LatencyRecorder();
        await using var pipeline = new WalPipeline(PipelineOptions(sourceConnectionString, changelogConnectionString, Slot, binaryTuples, filterOriginsOnServer));
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var run = pipeline.RunAsync(stop.Token);
        try
        {
            await WaitForRunningAsync(pipeline, run, ct);

            var timeline = new List<SteadySample>();
            await using var walsender = await WalsenderCpu.StartAsync(sourceConnectionString, Slot, ct);
            await using var cost = await StartCostAsync(probe, ct);
            var batchesBefore = pipeline.GetStatus().Batches;
            var clock = Stopwatch.StartNew();
            var bench = Pgbench.RunAsync(binDirectory, sourceConnectionString, pgbenchArguments, ct);
            while (!bench.IsCompleted)
            {
                ThrowIfStopped(run, pipeline);
                timeline.Add(Sample(pipeline, clock));
                await Task.WhenAny(bench, Task.Delay(s_sampleInterval, ct));
            }
            var with = await bench;
            var pgbenchSeconds = clock.Elapsed.TotalSeconds;

            var catchUp = Stopwatch.StartNew();
            await WaitForCatchUpAsync(sourceConnectionString, pipeline, run, catchUpTimeout, ct, () => timeline.Add(Sample(pipeline, clock)));
            timeline.Add(Sample(pipeline, clock));
            var latencyMilliseconds = latency.Snapshot().Select(s => s * 1000).ToArray();
            var pipelineWalsender = walsender is null ? null : await walsender.StopAsync(ct);
            var pipelineCost = cost is null ? null : await cost.StopAsync(pipeline.GetStatus().ChangesCommitted, ct);
            return new SteadyStateResult
            {
                Seconds = seconds,
                Clients = clients,
                Rate = rate,
                TpsWithout = without.Tps,
                TpsWithPgRecvLogical = withPgRecvLogical.Tps,
                TpsWith = with.Tps,
                // The lag while pgbench ran; the timeline goes on until the pipeline caught up.
                LagBytes = Percentiles.Of(timeline.Where(t => t.Seconds <= pgbenchSeconds).Select(t => t.LagBytes).OfType<long>().Select(b => (double)b)),
                LagSeconds = Percentiles.Of(timeline.Where(t => t.Seconds <= pgbenchSeconds).Select(t => t.LagSeconds).OfType<double>()),
                LatencyMilliseconds = Percentiles.Of(latencyMilliseconds),
                LatencyCdf = LatencyQuantile.Cdf(latencyMilliseconds),
                PgbenchSeconds = pgbenchSeconds,
                Timeline = timeline,
                ChangesCommitted = pipeline.GetStatus().ChangesCommitted,
                Batches = pipeline.GetStatus().Batches - batchesBefore,
                CatchUpSeconds = catchUp.Elapsed.TotalSeconds,
                WalsenderCpuSeconds = pipelineWalsender?.CpuSeconds,
                WalsenderProcesses = pipelineWalsender?.Processes,
                PgRecvLogicalChanges = withPgRecvLogical.Transactions * BenchWorkload.ChangesPerTransaction,
                PgRecvLogicalWalsenderCpuSeconds = recvWalsender?.CpuSeconds,
                PgRecvLogicalWalsenderProcesses = recvWalsender?.Processes,
                WithoutServerCost = withoutCost,
                PgRecvLogicalServerCost = recvCost,
                ServerCost = pipelineCost,
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

    /// <summary>The pipeline's options in the steady state and the idle phase; <paramref name="changelogConnectionString"/> null for the source database.</summary>
    internal static WalPipelineOptions PipelineOptions(string sourceConnectionString, string? changelogConnectionString, string slot, bool binaryTuples, bool filterOriginsOnServer) => new()
    {
        ConnectionString = ContenderNames.AsWriter(sourceConnectionString)!,
        ChangelogConnectionString = ContenderNames.AsWriter(changelogConnectionString),
        SlotName = slot,
        PublicationName = BenchSchema.Publication,
        CreateSlotIfMissing = false,
        Tables = BenchSchema.Registry(),
        BinaryTupleMode = binaryTuples,
        FilterOriginsOnServer = filterOriginsOnServer,
        ReadCoalescing = SocketCompletions.Inline,
    };

    internal static async Task WaitForRunningAsync(WalPipeline pipeline, Task run, CancellationToken ct)
    {
        var started = Stopwatch.StartNew();
        while (pipeline.GetStatus().State != WalPipelineState.Running)
        {
            ThrowIfStopped(run, pipeline);
            if (started.Elapsed > s_startTimeout)
                throw new TimeoutException($"the pipeline did not start in {s_startTimeout.TotalSeconds:F0} s");
            await Task.Delay(s_sampleInterval, ct);
        }
    }

    private static async Task<ServerCostSampler?> StartCostAsync(ServerCostProbe? probe, CancellationToken ct)
        => probe is null ? null : await ServerCostSampler.StartAsync(probe, ContenderNames.WriterApplications, ct);

    private static async Task<(PgbenchResult Result, WalsenderUsage? Walsender, ServerCostResult? Cost)> WithPgRecvLogicalAsync(
        string binDirectory, string connectionString, string[] pgbenchArguments, ServerCostProbe? probe, CancellationToken ct)
    {
        await CreateSlotAsync(connectionString, PgRecvLogicalSlot, ct);
        var start = PgRecvLogicalContender.StartInfo(binDirectory, connectionString, PgRecvLogicalSlot, endLsn: null);
        start.RedirectStandardError = true;
        await using var walsender = await WalsenderCpu.StartAsync(connectionString, PgRecvLogicalSlot, ct);
        await using var cost = await StartCostAsync(probe, ct);
        using var receiver = Process.Start(start) ?? throw new InvalidOperationException("could not start pg_recvlogical");
        var errors = receiver.StandardError.ReadToEndAsync(ct);
        try
        {
            var result = await Pgbench.RunAsync(binDirectory, connectionString, pgbenchArguments, ct);
            if (receiver.HasExited)
                throw new InvalidOperationException($"pg_recvlogical stopped during the run (exit {receiver.ExitCode}): {(await errors).Trim()}");
            await WaitForSentAsync(connectionString, PgRecvLogicalSlot, ct);
            var usage = walsender is null ? null : await walsender.StopAsync(ct);
            return (result, usage, cost is null ? null : await cost.StopAsync(result.Transactions * BenchWorkload.ChangesPerTransaction, ct));
        }
        finally
        {
            if (!receiver.HasExited)
                receiver.Kill();
            await receiver.WaitForExitAsync(CancellationToken.None);
            await BacklogGenerator.DropSlotsAsync(connectionString, [PgRecvLogicalSlot], CancellationToken.None);
        }
    }

    /// <summary>
    /// Until the walsender of <paramref name="slot"/> has decoded and sent the WAL up to the insert position now (its
    /// <c>sent_lsn</c>), so its CPU covers everything pgbench wrote; gives up after <see cref="s_sentTimeout"/>.
    /// </summary>
    private static async Task WaitForSentAsync(string connectionString, string slot, CancellationToken ct)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(ct);
        await using var current = new NpgsqlCommand("SELECT pg_current_wal_insert_lsn()", connection);
        var end = (NpgsqlLogSequenceNumber)(await current.ExecuteScalarAsync(ct))!;
        await using var sent = new NpgsqlCommand(
            "SELECT r.sent_lsn FROM pg_stat_replication r JOIN pg_replication_slots s ON s.active_pid = r.pid WHERE s.slot_name = $1", connection);
        sent.Parameters.AddWithValue(slot);
        var clock = Stopwatch.StartNew();
        while (await sent.ExecuteScalarAsync(ct) is not NpgsqlLogSequenceNumber at || at < end)
        {
            if (clock.Elapsed > s_sentTimeout)
            {
                HarnessRunner.Progress($"WARNING: the walsender of {slot} had not sent {end} after {s_sentTimeout.TotalSeconds:F0} s; its CPU stops there");
                return;
            }
            await Task.Delay(s_sampleInterval, ct);
        }
    }

    internal static async Task CreateSlotAsync(string connectionString, string slot, CancellationToken ct)
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
    internal static async Task WaitForCatchUpAsync(string connectionString, WalPipeline pipeline, Task run, TimeSpan timeout, CancellationToken ct, Action? sample = null)
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
            sample?.Invoke();
            await Task.Delay(s_sampleInterval, ct);
        }
    }

    // Before its first commit a fresh slot's pipeline reports its lag against LSN 0, not a real lag.
    private static SteadySample Sample(WalPipeline pipeline, Stopwatch clock)
    {
        var status = pipeline.GetStatus();
        return status.CommittedLsn.IsValid
            ? new SteadySample(clock.Elapsed.TotalSeconds, status.LagBytes, status.Lag.TotalSeconds, status.ChangesCommitted)
            : new SteadySample(clock.Elapsed.TotalSeconds, null, null, status.ChangesCommitted);
    }

    internal static void ThrowIfStopped(Task run, WalPipeline pipeline)
    {
        if (run.IsCompleted)
            throw new InvalidOperationException($"the pipeline stopped: {pipeline.GetStatus().Failure?.Message ?? run.Exception?.GetBaseException().Message ?? "no error"}");
    }

    private static string Invariant(int value) => value.ToString(CultureInfo.InvariantCulture);
}
