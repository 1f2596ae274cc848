using System.Diagnostics.Metrics;

namespace Synchro.Pipeline.Diagnostics;

/// <summary>Compaction's instruments on the <c>Synchro.Pipeline</c> meter: rows removed, runs, run duration.</summary>
/// <remarks>Recorded once per chunk (rows) and once per run, never per row.</remarks>
internal sealed class CompactionMetrics
{
    private static readonly KeyValuePair<string, object?> s_superseded = new("synchro.compaction.kind", "superseded");
    private static readonly KeyValuePair<string, object?> s_deletes = new("synchro.compaction.kind", "delete");

    // Compactors created without a meter factory (the CLI, an application's own) share one meter.
    private static readonly Lazy<CompactionMetrics> s_shared = new(() => new CompactionMetrics(new Meter(new MeterOptions(PipelineMetrics.MeterName) { Version = PipelineTracing.Version })));

    // Compaction runs take from seconds to most of an hour.
    internal static readonly double[] DurationBuckets = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600];

    private readonly Counter<long> _rowsRemoved;
    private readonly Counter<long> _runs;
    private readonly Histogram<double> _duration;

    // The pipeline's slot for its scheduled runs; none for a compactor of its own.
    private readonly KeyValuePair<string, object?>? _slotTag;

    public CompactionMetrics(Meter meter, KeyValuePair<string, object?>? slotTag = null)
    {
        _slotTag = slotTag;
        _rowsRemoved = meter.CreateCounter<long>("synchro.pipeline.compaction.rows_removed", "{row}",
            "Changelog rows compaction removed (synchro.compaction.kind: superseded = a later row of the record exists, delete = a latest delete past the retention).");
        _runs = meter.CreateCounter<long>("synchro.pipeline.compaction.runs", "{run}",
            "Compaction runs by outcome (synchro.compaction.outcome: complete, partial = some buckets had too many records, skipped = another run held the lock, failed, stopped).");
        _duration = meter.CreateHistogram("synchro.pipeline.compaction.duration", "s", "Duration of a compaction run that completed.", tags: null,
            new InstrumentAdvice<double> { HistogramBucketBoundaries = DurationBuckets });
    }

    /// <summary>The instruments of compactors that were given no meter factory.</summary>
    public static CompactionMetrics Shared => s_shared.Value;

    /// <summary>A chunk committed.</summary>
    public void Removed(long superseded, long deletes)
    {
        if (superseded > 0)
            Add(_rowsRemoved, superseded, s_superseded);
        if (deletes > 0)
            Add(_rowsRemoved, deletes, s_deletes);
    }

    /// <summary>A run ended with <paramref name="outcome"/> after <paramref name="duration"/> (recorded only for runs that finished).</summary>
    public void RunEnded(string outcome, TimeSpan? duration = null)
    {
        Add(_runs, 1, new KeyValuePair<string, object?>("synchro.compaction.outcome", outcome));
        if (duration is { } elapsed)
        {
            if (_slotTag is { } slot)
                _duration.Record(elapsed.TotalSeconds, slot);
            else
                _duration.Record(elapsed.TotalSeconds);
        }
    }

    private void Add(Counter<long> counter, long value, KeyValuePair<string, object?> tag)
    {
        if (_slotTag is { } slot)
            counter.Add(value, tag, slot);
        else
            counter.Add(value, tag);
    }
}
