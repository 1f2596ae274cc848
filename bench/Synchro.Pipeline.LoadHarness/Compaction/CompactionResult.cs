using System.Text.Json;
using Synchro.Pipeline.LoadHarness.Backlog;
using Synchro.Pipeline.LoadHarness.Contenders;
using Synchro.Pipeline.LoadHarness.Reporting;

namespace Synchro.Pipeline.LoadHarness.Compaction;

/// <summary>One compaction pass over the grown changelog, in the harness process, measured alone.</summary>
internal sealed record CompactionPass
{
    public long RowsRemoved { get; init; }
    public double Seconds { get; init; }
    public long WalBytes { get; init; }
    public required PhaseUsage Usage { get; init; }
    public required HorizonFacts Horizons { get; init; }

    /// <summary>What <c>CompactAsync</c> returned, as JSON.</summary>
    public JsonElement? LibraryResult { get; init; }
    public double RowsRemovedPerSecond => Seconds > 0 ? RowsRemoved / Seconds : 0;
}

/// <summary>The writer draining the same backlog from two slots: alone, then while a compaction loop runs on its changelog.</summary>
internal sealed record WriterComparison
{
    public required BacklogInfo Backlog { get; init; }
    public required ContenderResult Alone { get; init; }
    public required ContenderResult WithCompaction { get; init; }

    /// <summary>Each drain's child process from start to exit: the pipeline's start-up (schema check, slot) and stop included.</summary>
    public double AloneProcessSeconds { get; init; }
    public double WithCompactionProcessSeconds { get; init; }

    /// <summary>Compaction passes that finished while the second drain ran (the one running at its end is cancelled).</summary>
    public int CompactionPasses { get; init; }

    /// <summary>From cancelling the loop's token after the drain to the pass in flight giving up.</summary>
    public double LoopStopSeconds { get; init; }

    /// <summary>Rows the loop removed while the drain ran, the pass cut off by its end included.</summary>
    public long CompactionRowsRemoved { get; init; }
    public PhaseUsage? CompactionUsage { get; init; }
    public double? Ratio => WithCompaction.ChangesPerSecond is { } with && Alone.ChangesPerSecond is { } alone && alone > 0 ? with / alone : null;
}

/// <summary>Time of one <c>ChangelogReader.ReadAsync</c> page over some buckets of the compacted changelog.</summary>
internal sealed record ReaderPageTimes(int Buckets, int Limit, int Pages, double RowsPerPage, double P50Milliseconds, double P99Milliseconds, double MaxMilliseconds);

/// <summary>Everything the <c>compaction</c> verb measured; serialised as <c>compaction.json</c>.</summary>
internal sealed record CompactionReport
{
    public required DateTimeOffset StartedAt { get; init; }
    public required MachineFacts Machine { get; init; }
    public required BacklogInfo Backlog { get; init; }
    public required ContenderResult Drain { get; init; }
    public required TimeSpan Retention { get; init; }
    public required TimeSpan BackdatedBy { get; init; }
    public long BackdatedRows { get; init; }
    public long BackdatedUpToSeq { get; init; }
    public required ExpectedRemovals Expected { get; init; }
    public required ChangelogSizes Before { get; init; }
    public required CompactionPass Compaction { get; init; }
    public required ChangelogSizes AfterCompaction { get; init; }
    public required ChangelogSizes AfterVacuum { get; init; }
    public double VacuumSeconds { get; init; }
    public WriterComparison? Writer { get; init; }
    public ChangelogSizes? AfterWriter { get; init; }
    public IReadOnlyList<ReaderPageTimes>? Reader { get; init; }
    public string? ReaderNote { get; init; }
    public required IReadOnlyDictionary<string, double> StepSeconds { get; init; }
    public double TotalSeconds { get; init; }
}
