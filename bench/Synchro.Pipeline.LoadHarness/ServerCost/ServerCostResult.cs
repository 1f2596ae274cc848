using Synchro.Pipeline.LoadHarness.Statements;

namespace Synchro.Pipeline.LoadHarness.ServerCost;

/// <summary>
/// What the database server spent over one phase: CPU per process kind (<see cref="ServerProcessKind"/>, from
/// <c>/proc</c>) and the WAL the whole cluster wrote, each also per change of <see cref="Changes"/>.
/// </summary>
internal sealed record ServerCostResult
{
    public double Seconds { get; init; }

    /// <summary>The changes the per-change figures divide by: what the phase consumed (the COPY baseline: the changes its rows came from).</summary>
    public long Changes { get; init; }

    /// <summary>CPU seconds per <see cref="ServerProcessKind"/>, every kind present.</summary>
    public IReadOnlyDictionary<string, double> CpuSeconds { get; init; } = new Dictionary<string, double>();

    /// <summary>Processes seen per kind.</summary>
    public IReadOnlyDictionary<string, int> Processes { get; init; } = new Dictionary<string, int>();

    /// <summary>The insert LSN's advance over the phase: every byte of WAL the cluster wrote, page headers included.</summary>
    public long WalBytes { get; init; }
    public string StartLsn { get; init; } = "";
    public string EndLsn { get; init; } = "";

    /// <summary>pg_stat_wal's counters' advance: what the server had flushed to its statistics (a live backend flushes at most once a second).</summary>
    public long? StatsWalRecords { get; init; }
    public long? StatsWalFpi { get; init; }
    public long? StatsWalBytes { get; init; }

    /// <summary>pg_waldump --stats over the phase's LSN range: every record's bytes and the full-page images' share; null without a matching pg_waldump.</summary>
    public WalDumpTotals? WalDump { get; init; }

    /// <summary>Why pg_waldump gave no figures, when it failed.</summary>
    public string? WalDumpError { get; init; }

    /// <summary>The WAL by relation (--wal-by-relation), largest first; null when not asked for.</summary>
    public IReadOnlyList<WalRelationShare>? WalByRelation { get; init; }

    /// <summary>The statements the phase executed (--statements, <c>pg_stat_statements</c>); null when not asked for.</summary>
    public StatementCosts? Statements { get; init; }

    public double TotalCpuSeconds => CpuSeconds.Values.Sum();
    public IReadOnlyDictionary<string, double> CpuSecondsPerMillionChanges =>
        Changes > 0 ? CpuSeconds.ToDictionary(k => k.Key, k => k.Value * 1e6 / Changes) : new Dictionary<string, double>();
    public double? TotalCpuSecondsPerMillionChanges => Changes > 0 ? TotalCpuSeconds * 1e6 / Changes : null;
    public double? WalBytesPerChange => Changes > 0 ? (double)WalBytes / Changes : null;
    public double? FullPageImagesPerChange => StatsWalFpi is { } fpi && Changes > 0 ? (double)fpi / Changes : null;

    /// <summary>The full-page images' share of the WAL's bytes (pg_waldump), else null.</summary>
    public double? FullPageImageShare => WalDump?.FullPageImageShare;
}

/// <summary>pg_waldump's Total line: records, their bytes without images, the images' bytes, both.</summary>
internal sealed record WalDumpTotals(long Records, long RecordBytes, long FullPageImageBytes, long CombinedBytes)
{
    public double? FullPageImageShare => CombinedBytes > 0 ? (double)FullPageImageBytes / CombinedBytes : null;
}

/// <summary>The WAL of one relation (by its records' first block reference) or resource manager (records without one).</summary>
internal sealed record WalRelationShare(string Relation, long Records, long Bytes, long FullPageImageBytes, long FullPageImages);
