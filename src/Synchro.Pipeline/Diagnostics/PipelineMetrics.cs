using System.Diagnostics.Metrics;

namespace Synchro.Pipeline.Diagnostics;

/// <summary>The pipeline's instruments on the <c>Synchro.Pipeline</c> meter.</summary>
internal sealed class PipelineMetrics : IDisposable
{
    public const string MeterName = "Synchro.Pipeline";

    private readonly Meter _meter;
    private readonly Counter<long> _batches;
    private readonly Counter<long> _changes;
    private readonly Counter<long> _transactions;
    private readonly Counter<long> _changelogRows;
    private readonly Counter<long> _ruleFailures;
    private readonly Histogram<int> _batchSize;

    public PipelineMetrics(IMeterFactory? meterFactory = null)
    {
        _meter = meterFactory?.Create(MeterName) ?? new Meter(MeterName);
        _batches = _meter.CreateCounter<long>("synchro.pipeline.batches", "{batch}", "Batches committed to the changelog.");
        _changes = _meter.CreateCounter<long>("synchro.pipeline.changes", "{change}", "Changes of registered tables committed to the changelog.");
        _transactions = _meter.CreateCounter<long>("synchro.pipeline.transactions", "{transaction}", "Source transactions committed to the changelog.");
        _changelogRows = _meter.CreateCounter<long>("synchro.pipeline.changelog_rows", "{row}", "Changelog rows written.");
        _ruleFailures = _meter.CreateCounter<long>("synchro.pipeline.rule_failures", "{change}", "Changes whose bucket rule failed.");
        _batchSize = _meter.CreateHistogram<int>("synchro.pipeline.batch_size", "{change}", "Changes per committed batch.");
    }

    /// <summary>Changes committed so far, for progress reports.</summary>
    public long CommittedChanges => Interlocked.Read(ref _committedChanges);

    private long _committedChanges;

    /// <summary>A database transaction committed <paramref name="changes"/> changes of <paramref name="transactions"/> source transactions.</summary>
    public void BatchCommitted(int changes, int transactions)
    {
        _batches.Add(1);
        _changes.Add(changes);
        _transactions.Add(transactions);
        _batchSize.Record(changes);
        Interlocked.Add(ref _committedChanges, changes);
    }

    public void ChangelogRowsWritten(int rows, int failures)
    {
        _changelogRows.Add(rows);
        if (failures > 0)
            _ruleFailures.Add(failures);
    }

    public void Dispose() => _meter.Dispose();
}
