namespace Synchro.Pipeline.LoadHarness.SteadyState;

/// <summary>pgbench at its maximum rate for a fixed time: without a consumer, with pg_recvlogical consuming, with our pipeline consuming.</summary>
internal sealed record SteadyStateResult
{
    public int Seconds { get; init; }
    public int Clients { get; init; }
    public double TpsWithout { get; init; }
    public double TpsWithPgRecvLogical { get; init; }
    public double TpsWith { get; init; }
    public double? TpsRatio => TpsWithout > 0 ? TpsWith / TpsWithout : null;

    /// <summary>What logical decoding alone leaves of the primary's tps: the ceiling of <see cref="TpsRatio"/>.</summary>
    public double? PgRecvLogicalTpsRatio => TpsWithout > 0 ? TpsWithPgRecvLogical / TpsWithout : null;

    /// <summary>Replication lag sampled every 100 ms while pgbench ran (WalPipeline.GetStatus).</summary>
    public Percentiles? LagBytes { get; init; }
    public Percentiles? LagSeconds { get; init; }

    /// <summary>Commit-to-changelog latency in milliseconds, one value per source transaction.</summary>
    public Percentiles? LatencyMilliseconds { get; init; }

    public long ChangesCommitted { get; init; }
    public double CatchUpSeconds { get; init; }
    public string? Error { get; init; }
}
