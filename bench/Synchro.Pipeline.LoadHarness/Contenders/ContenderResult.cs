using Synchro.Pipeline.LoadHarness.ServerCost;

namespace Synchro.Pipeline.LoadHarness.Contenders;

/// <summary>One contender's figures. CPU, allocation and wall time cover the drain only; peak RSS is the whole process's.</summary>
internal sealed record ContenderResult
{
    public required string Name { get; init; }
    public string? Error { get; init; }
    public long Changes { get; init; }
    public long PgoutputBytes { get; init; }
    public double WallSeconds { get; init; }
    public double? CpuSeconds { get; init; }
    public long? PeakRssBytes { get; init; }
    public long? AllocatedBytes { get; init; }

    /// <summary>Rows written (changelog, edges): by ours end to end, the Go design and the COPY baseline.</summary>
    public long? ChangelogRows { get; init; }
    public long? EdgeRows { get; init; }

    /// <summary>Changelog batches our pipeline committed (its status); null for the other contenders.</summary>
    public long? Batches { get; init; }

    /// <summary>
    /// CPU of the server's walsender serving the contender's slot while it ran (/proc, user + system), summed over
    /// <see cref="WalsenderProcesses"/> processes (more than one after a reconnect); null when not measured.
    /// </summary>
    public double? WalsenderCpuSeconds { get; init; }
    public int? WalsenderProcesses { get; init; }

    /// <summary>What the server spent while the contender ran (its whole process: start-up, drain, stop); null when not measured.</summary>
    public ServerCostResult? ServerCost { get; init; }

    /// <summary>Whether the contender reached the backlog's end (the Go design stops at its slice instead).</summary>
    public bool ReachedEnd { get; init; }

    /// <summary>Our pipeline reached the end, then failed while being stopped: the figures stand, the error is reported beside them.</summary>
    public string? StopError { get; init; }

    public bool Succeeded => Error is null;
    public double? ChangesPerSecond => WallSeconds > 0 && Changes > 0 ? Changes / WallSeconds : null;
    public double? PgoutputMegabytesPerSecond => WallSeconds > 0 && PgoutputBytes > 0 ? PgoutputBytes / 1e6 / WallSeconds : null;
    public double? CpuSecondsPerMillionChanges => CpuSeconds is { } cpu && Changes > 0 ? cpu * 1e6 / Changes : null;
    public double? WalsenderCpuSecondsPerMillionChanges => WalsenderCpuSeconds is { } cpu && Changes > 0 ? cpu * 1e6 / Changes : null;
    public double? AllocatedBytesPerChange => AllocatedBytes is { } bytes && Changes > 0 ? (double)bytes / Changes : null;
}
