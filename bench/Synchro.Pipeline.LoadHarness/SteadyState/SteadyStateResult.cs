namespace Synchro.Pipeline.LoadHarness.SteadyState;

/// <summary>pgbench at its maximum rate for a fixed time, without and then with our pipeline consuming.</summary>
internal sealed record SteadyStateResult
{
    public int Seconds { get; init; }
    public int Clients { get; init; }
    public double TpsWithout { get; init; }
    public double TpsWith { get; init; }
    public double? TpsRatio => TpsWithout > 0 ? TpsWith / TpsWithout : null;

    /// <summary>Replication lag sampled every 100 ms while pgbench ran (WalPipeline.GetStatus).</summary>
    public Percentiles? LagBytes { get; init; }
    public Percentiles? LagSeconds { get; init; }

    /// <summary>Commit-to-changelog latency in milliseconds, one value per source transaction.</summary>
    public Percentiles? LatencyMilliseconds { get; init; }

    public long ChangesCommitted { get; init; }
    public double CatchUpSeconds { get; init; }
    public string? Error { get; init; }
}
