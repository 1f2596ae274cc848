using Synchro.Pipeline.LoadHarness.ServerCost;

namespace Synchro.Pipeline.LoadHarness.SteadyState;

/// <summary>pgbench at its maximum rate for a fixed time: without a consumer, with pg_recvlogical consuming, with our pipeline consuming.</summary>
internal sealed record SteadyStateResult
{
    public int Seconds { get; init; }
    public int Clients { get; init; }

    /// <summary>pgbench's rate limit in transactions per second; null when it ran unthrottled.</summary>
    public int? Rate { get; init; }
    public double TpsWithout { get; init; }
    public double TpsWithPgRecvLogical { get; init; }
    public double TpsWith { get; init; }
    public double? TpsRatio => TpsWithout > 0 ? TpsWith / TpsWithout : null;

    /// <summary>What logical decoding alone leaves of the primary's tps: the ceiling of <see cref="TpsRatio"/>.</summary>
    public double? PgRecvLogicalTpsRatio => TpsWithout > 0 ? TpsWithPgRecvLogical / TpsWithout : null;

    /// <summary>Replication lag sampled every 100 ms while pgbench ran (WalPipeline.GetStatus), from <see cref="Timeline"/>.</summary>
    public Percentiles? LagBytes { get; init; }
    public Percentiles? LagSeconds { get; init; }

    /// <summary>Commit-to-changelog latency in milliseconds, one value per source transaction.</summary>
    public Percentiles? LatencyMilliseconds { get; init; }

    /// <summary>The same latencies as a distribution (empirical CDF); empty when none was recorded.</summary>
    public IReadOnlyList<LatencyQuantile> LatencyCdf { get; init; } = [];

    /// <summary>How long pgbench ran with the pipeline consuming, on the clock of <see cref="Timeline"/>.</summary>
    public double PgbenchSeconds { get; init; }

    /// <summary>The pipeline's lag and committed changes every 100 ms, from pgbench's start until the pipeline caught up.</summary>
    public IReadOnlyList<SteadySample> Timeline { get; init; } = [];

    public long ChangesCommitted { get; init; }

    /// <summary>Changelog batches the pipeline committed from pgbench's start until it caught up (the server-cost window).</summary>
    public long Batches { get; init; }
    public double CatchUpSeconds { get; init; }

    /// <summary>CPU of the walsender serving the pipeline from pgbench's start until the pipeline caught up; null when not measured.</summary>
    public double? WalsenderCpuSeconds { get; init; }
    public int? WalsenderProcesses { get; init; }
    public double? WalsenderCpuSecondsPerMillionChanges => WalsenderCpuSeconds is { } cpu && ChangesCommitted > 0 ? cpu * 1e6 / ChangesCommitted : null;

    /// <summary>The changes pgbench made while pg_recvlogical consumed, and the CPU of its walsender until it had sent them.</summary>
    public long PgRecvLogicalChanges { get; init; }
    public double? PgRecvLogicalWalsenderCpuSeconds { get; init; }
    public int? PgRecvLogicalWalsenderProcesses { get; init; }
    public double? PgRecvLogicalWalsenderCpuSecondsPerMillionChanges
        => PgRecvLogicalWalsenderCpuSeconds is { } cpu && PgRecvLogicalChanges > 0 ? cpu * 1e6 / PgRecvLogicalChanges : null;

    /// <summary>What the server spent in each run (null when not measured): pgbench alone, with pg_recvlogical, with the pipeline.</summary>
    public ServerCostResult? WithoutServerCost { get; init; }
    public ServerCostResult? PgRecvLogicalServerCost { get; init; }
    public ServerCostResult? ServerCost { get; init; }
    public string? Error { get; init; }
}
