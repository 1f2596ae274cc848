using System.Diagnostics;
using System.Diagnostics.Metrics;
using Synchro.Pipeline.Protocol;

namespace Synchro.Pipeline.Diagnostics;

/// <summary>
/// The pipeline's live figures and its instruments on the <c>Synchro.Pipeline</c> meter. Each figure
/// has one writer stage; readers (observable instruments, <see cref="Snapshot"/>) may run on any thread.
/// </summary>
/// <remarks>
/// Counts are observable instruments over fields the stages update once per frame or per batch, so
/// the hot path pays a field write, not an instrument call. Histograms are recorded once per batch
/// (latency once per source transaction).
/// </remarks>
internal sealed class PipelineMetrics : IDisposable
{
    public const string MeterName = PipelineTelemetry.MeterName;

    // Bucket advice for the histograms, so an exporter's defaults (OpenTelemetry's are sized for milliseconds) do not put
    // every measurement in the first bucket or two.
    internal static readonly double[] BatchDurationBuckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
    internal static readonly double[] LatencyBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800];
    internal static readonly int[] BatchSizeBuckets = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 25_000, 50_000, 100_000];

    private static readonly KeyValuePair<string, object?> s_itemsQueue = new("synchro.queue", "batches");
    private static readonly KeyValuePair<string, object?> s_receiptsQueue = new("synchro.queue", "receipts");

    private readonly KeyValuePair<string, object?> _slotTag;

    private readonly Meter _meter;
    private readonly bool _ownsMeter;
    private readonly Histogram<int> _batchSize;
    private readonly Histogram<double> _batchDuration;
    private readonly Histogram<double> _changelogLatency;
    private readonly Func<Lsn> _committedPosition;

    // Reader.
    private long _bytesReceived;

    // Decoder.
    private long _bytesDecoded;
    private long _serverWalEnd;
    private long _changesDecoded;

    // Writer.
    private long _changesCommitted;
    private long _transactions;
    private long _batches;
    private long _changelogRows;
    private long _ruleFailures;
    private long _tablesTruncated;
    private long _writingSinceTicks;
    private long _lastBatchTicks;

    // Lifecycle.
    private long _reconnects;
    private volatile SlotHealthReading? _slotHealth;
    private long _snapshotRows;
    private volatile StateAndFailure _state = new(WalPipelineState.NotStarted, null);
    private volatile RetryEpisode? _retrying;
    private volatile StageQueues? _queues;
    private CompactionMetrics? _compaction;
    // Instance role (WaitForLock): 1 while this instance holds the slot lock; the holder named while it waits.
    private int _active;
    private volatile string? _lockHolder;

    /// <param name="committedPosition">Reads the one committed position (its owner is the runtime's committer).</param>
    /// <param name="slot">The slot the pipeline consumes: the <c>synchro.slot</c> tag of the meter and of every measurement.</param>
    /// <param name="meterFactory">The application's meter factory; null for a meter of the pipeline's own.</param>
    public PipelineMetrics(Func<Lsn> committedPosition, string slot, IMeterFactory? meterFactory = null)
    {
        _committedPosition = committedPosition;
        Slot = slot;
        _slotTag = new(PipelineTracing.SlotTag, slot);
        // The slot is a meter tag too (an OTLP scope attribute), so two pipelines of one factory get meters of their own.
        var options = new MeterOptions(MeterName) { Version = PipelineTracing.Version, Tags = [_slotTag] };
        _ownsMeter = meterFactory is null;
        _meter = meterFactory?.Create(options) ?? new Meter(options);

        _meter.CreateObservableCounter("synchro.pipeline.wal.received", () => Tagged(Volatile.Read(ref _bytesReceived)), "By", "pgoutput bytes received from the server.");
        _meter.CreateObservableCounter("synchro.pipeline.changes.decoded", () => Tagged(Volatile.Read(ref _changesDecoded)), "{change}", "Changes of registered tables decoded.");
        _meter.CreateObservableCounter("synchro.pipeline.changes.committed", () => Tagged(Volatile.Read(ref _changesCommitted)), "{change}", "Changes of registered tables committed to the changelog.");
        _meter.CreateObservableCounter("synchro.pipeline.transactions", () => Tagged(Volatile.Read(ref _transactions)), "{transaction}", "Source transactions committed to the changelog.");
        _meter.CreateObservableCounter("synchro.pipeline.batches", () => Tagged(Volatile.Read(ref _batches)), "{batch}", "Batches committed to the changelog.");
        _meter.CreateObservableCounter("synchro.pipeline.changelog.rows", () => Tagged(Volatile.Read(ref _changelogRows)), "{row}", "Changelog rows written.");
        _meter.CreateObservableCounter("synchro.pipeline.rule_failures", () => Tagged(Volatile.Read(ref _ruleFailures)), "{change}", "Changes whose bucket rule failed, recorded in sync_rule_failures.");
        _meter.CreateObservableCounter("synchro.pipeline.truncates", () => Tagged(Volatile.Read(ref _tablesTruncated)), "{table}", "Registered tables truncated: their records' edges turned into delete rows.");
        _meter.CreateObservableCounter("synchro.pipeline.reconnects", () => Tagged(Volatile.Read(ref _reconnects)), "{reconnect}", "Reconnections after a lost connection.");

        _batchSize = _meter.CreateHistogram("synchro.pipeline.batch.size", "{change}", "Changes per committed batch.", tags: null,
            new InstrumentAdvice<int> { HistogramBucketBoundaries = BatchSizeBuckets });
        _batchDuration = _meter.CreateHistogram("synchro.pipeline.batch.duration", "s", "Time to write and commit one batch, from its first row to its commit.", tags: null,
            new InstrumentAdvice<double> { HistogramBucketBoundaries = BatchDurationBuckets });
        _changelogLatency = _meter.CreateHistogram("synchro.pipeline.changelog.latency", "s", "From a source transaction's commit to the commit of its changelog rows.", tags: null,
            new InstrumentAdvice<double> { HistogramBucketBoundaries = LatencyBuckets });

        _meter.CreateObservableGauge("synchro.pipeline.replication.lag", () => Tagged(LagBytes), "By", "WAL bytes between the server's WAL end and the last position committed to the changelog.");
        _meter.CreateObservableGauge("synchro.pipeline.replication.lag_time", () => Tagged(Lag(DateTime.UtcNow).TotalSeconds), "s", "Age of the oldest source transaction handed to the writer and not yet committed.");
        _meter.CreateObservableGauge("synchro.pipeline.queue.depth", QueueDepths, "{item}", "Items waiting in the queues between stages (synchro.queue: batches = items from the decoder to the writer, receipts = writer to committer).");
        _meter.CreateObservableGauge("synchro.pipeline.slot.safe_wal_size", SafeWalSize, "By", "WAL the server may still write before it invalidates the slot (pg_replication_slots.safe_wal_size); absent without max_slot_wal_keep_size.");
        _meter.CreateObservableGauge("synchro.pipeline.slot.invalidated", SlotInvalidated, "{slot}", "1 once the server invalidated the slot (PostgreSQL 17+: synchro.slot.invalidation_reason = wal_removed, rows_removed, wal_level_insufficient, idle_timeout), else 0; absent before the first health check.");
        _meter.CreateObservableGauge("synchro.pipeline.slot.failover", SlotFailover, "{slot}", "1 when the slot is a failover slot (PostgreSQL 17+; synchro.slot.synced tells a standby's synced copy), else 0; absent before 17.");
        _meter.CreateObservableGauge("synchro.pipeline.wal.buffered", () => Tagged(BufferedBytes), "By", "WAL received and not yet decoded.");
        _meter.CreateObservableGauge("synchro.pipeline.instance.active", () => Tagged(Volatile.Read(ref _active)), "{instance}", "1 while this instance holds the slot lock and consumes the slot, 0 while it waits for another instance to let go of it (WaitForLock) or is stopped.");
    }

    /// <summary>Compaction's instruments on this meter (the scheduled runs').</summary>
    public CompactionMetrics Compaction => _compaction ??= new CompactionMetrics(_meter, _slotTag);

    /// <summary>The slot the pipeline consumes.</summary>
    public string Slot { get; }

    /// <summary>Changes committed so far, for progress reports.</summary>
    public long CommittedChanges => Volatile.Read(ref _changesCommitted);

    private long LagBytes => Math.Max(0, Volatile.Read(ref _serverWalEnd) - (long)_committedPosition().Value);

    private long BufferedBytes => Math.Max(0, Volatile.Read(ref _bytesReceived) - Volatile.Read(ref _bytesDecoded));

    public void SetState(WalPipelineState state, Exception? failure = null) => _state = new(state, failure);

    /// <summary>
    /// An attempt failed with <paramref name="error"/> and another follows: <paramref name="state"/> is
    /// <see cref="WalPipelineState.Starting"/> before the pipeline first streamed, else <see cref="WalPipelineState.Reconnecting"/>
    /// (counted in the reconnects). <paramref name="attempt"/> failed attempts since <paramref name="since"/> with nothing committed.
    /// </summary>
    public void Retrying(WalPipelineState state, Exception error, int attempt, DateTimeOffset since)
    {
        if (state == WalPipelineState.Reconnecting)
            Interlocked.Increment(ref _reconnects);
        _retrying = new RetryEpisode(attempt, since);
        SetState(state, error);
    }

    /// <summary>This instance waits for the slot or changelog lock that <paramref name="holder"/> (described) holds; it holds neither.</summary>
    public void WaitingForLock(string holder)
    {
        _lockHolder = holder;
        Volatile.Write(ref _active, 0);
        // Waiting is getting somewhere: the server answers. A retry episode before it is over.
        _retrying = null;
        SetState(WalPipelineState.WaitingForLock);
    }

    /// <summary>This instance holds the slot and changelog locks: it is the active one (a wait for them is over).</summary>
    public void LocksHeld()
    {
        Volatile.Write(ref _active, 1);
        if (_state.State == WalPipelineState.WaitingForLock)
            SetState(WalPipelineState.Starting);
    }

    /// <summary>This instance's run ended: it holds no lock.</summary>
    public void LocksReleased() => Volatile.Write(ref _active, 0);

    /// <summary>Initial snapshot: <paramref name="rows"/> rows read so far.</summary>
    public void SnapshotRowsLoaded(long rows) => Volatile.Write(ref _snapshotRows, rows);

    /// <summary>A run starts with these queues between its stages.</summary>
    public void RunStarted(StageQueues queues)
    {
        Volatile.Write(ref _writingSinceTicks, 0);
        // Bytes buffered by an earlier run were dropped with its pipe.
        Volatile.Write(ref _bytesDecoded, Volatile.Read(ref _bytesReceived));
        _queues = queues;
        SetState(WalPipelineState.Running);
    }

    /// <summary>Reader: <paramref name="bytes"/> of frames went into the pipe.</summary>
    public void Received(int bytes) => Interlocked.Add(ref _bytesReceived, bytes);

    /// <summary>Decoder: a frame of <paramref name="bytes"/> was decoded; the server's WAL ended at <paramref name="serverWalEnd"/> when it was sent.</summary>
    public void FrameDecoded(int bytes, Lsn serverWalEnd)
    {
        Volatile.Write(ref _bytesDecoded, _bytesDecoded + bytes);
        if ((long)serverWalEnd.Value > _serverWalEnd)
            Volatile.Write(ref _serverWalEnd, (long)serverWalEnd.Value);
    }

    /// <summary>Decoder: a batch of <paramref name="changes"/> went to the writer.</summary>
    public void BatchDecoded(int changes) => Volatile.Write(ref _changesDecoded, _changesDecoded + changes);

    /// <summary>
    /// Writer: started on a batch whose first source transaction committed at <paramref name="firstCommitTime"/>
    /// (default for none); the first chunk of a database transaction sets the lag clock.
    /// </summary>
    public void Writing(DateTime firstCommitTime)
    {
        if (firstCommitTime != default && Volatile.Read(ref _writingSinceTicks) == 0)
            Volatile.Write(ref _writingSinceTicks, firstCommitTime.Ticks);
    }

    public void ChangelogRowsWritten(int rows, int failures)
    {
        Volatile.Write(ref _changelogRows, _changelogRows + rows);
        if (failures > 0)
            Volatile.Write(ref _ruleFailures, _ruleFailures + failures);
    }

    /// <summary>Writer: a TRUNCATE emptied <paramref name="tables"/> registered tables, written as <paramref name="rows"/> delete rows.</summary>
    public void TablesTruncated(int tables, long rows)
    {
        Volatile.Write(ref _tablesTruncated, _tablesTruncated + tables);
        Volatile.Write(ref _changelogRows, _changelogRows + rows);
    }

    /// <summary>
    /// Writer: a database transaction of <paramref name="changes"/> changes from <paramref name="transactions"/> source
    /// transactions (committed at <paramref name="commitTimes"/>) committed; begun at <paramref name="startTimestamp"/>.
    /// </summary>
    public void BatchCommitted(int changes, int transactions, IReadOnlyList<DateTime> commitTimes, long startTimestamp)
    {
        var now = DateTime.UtcNow;
        Volatile.Write(ref _writingSinceTicks, 0);
        Volatile.Write(ref _lastBatchTicks, now.Ticks);
        // Something was committed: a retry episode is over.
        if (_retrying is not null)
            _retrying = null;
        // A heartbeat moves the position and nothing else.
        if (changes == 0 && transactions == 0)
            return;

        Volatile.Write(ref _changesCommitted, _changesCommitted + changes);
        Volatile.Write(ref _transactions, _transactions + transactions);
        Volatile.Write(ref _batches, _batches + 1);
        _batchSize.Record(changes, _slotTag);
        _batchDuration.Record(Stopwatch.GetElapsedTime(startTimestamp).TotalSeconds, _slotTag);
        if (_changelogLatency.Enabled)
        {
            foreach (var commitTime in commitTimes)
                _changelogLatency.Record(Math.Max(0, (now - commitTime).TotalSeconds), _slotTag);
        }
    }

    public WalPipelineStatus Snapshot()
    {
        var now = DateTime.UtcNow;
        var state = _state;
        var retrying = _retrying;
        var lastBatch = Volatile.Read(ref _lastBatchTicks);
        var slot = _slotHealth;
        return new WalPipelineStatus
        {
            State = state.State,
            Failure = state.Failure,
            CommittedLsn = _committedPosition(),
            ServerWalEnd = new Lsn((ulong)Volatile.Read(ref _serverWalEnd)),
            LagBytes = LagBytes,
            Lag = Lag(now),
            BytesReceived = Volatile.Read(ref _bytesReceived),
            BufferedBytes = BufferedBytes,
            ChangesDecoded = Volatile.Read(ref _changesDecoded),
            ChangesCommitted = Volatile.Read(ref _changesCommitted),
            Transactions = Volatile.Read(ref _transactions),
            Batches = Volatile.Read(ref _batches),
            ChangelogRows = Volatile.Read(ref _changelogRows),
            RuleFailures = Volatile.Read(ref _ruleFailures),
            Reconnects = Volatile.Read(ref _reconnects),
            RetryAttempts = retrying?.Attempt ?? 0,
            RetryingSince = retrying?.Since,
            SnapshotRows = Volatile.Read(ref _snapshotRows),
            LastBatchAt = lastBatch == 0 ? null : new DateTimeOffset(lastBatch, TimeSpan.Zero),
            SlotWalStatus = slot?.WalStatus,
            SlotSafeWalSize = slot?.SafeWalSize,
            SlotInvalidationReason = slot?.InvalidationReason,
            SlotInactiveSince = slot?.InactiveSince,
            SlotFailover = slot?.Failover,
            SlotSynced = slot?.Synced,
            LockHolder = state.State == WalPipelineState.WaitingForLock ? _lockHolder : null,
        };
    }

    private TimeSpan Lag(DateTime now)
    {
        var since = Volatile.Read(ref _writingSinceTicks);
        if (since == 0 && _queues?.NextCommitTime() is { } next && next != default)
            since = next.Ticks;
        return since == 0 ? TimeSpan.Zero : TimeSpan.FromTicks(Math.Max(0, now.Ticks - since));
    }

    private IEnumerable<Measurement<int>> QueueDepths()
    {
        if (_queues is { } queues)
        {
            yield return new Measurement<int>(queues.Items(), s_itemsQueue, _slotTag);
            yield return new Measurement<int>(queues.Receipts(), s_receiptsQueue, _slotTag);
        }
    }

    public void Dispose()
    {
        if (_ownsMeter)
            _meter.Dispose();
    }

    /// <summary>Slot health watch: the slot as last observed.</summary>
    public void SlotHealth(SlotHealthReading health) => _slotHealth = health;

    private IEnumerable<Measurement<long>> SafeWalSize()
    {
        if (_slotHealth?.SafeWalSize is { } safe)
            yield return Tagged(safe);
    }

    private IEnumerable<Measurement<int>> SlotInvalidated()
    {
        if (_slotHealth is { } slot)
        {
            yield return slot.InvalidationReason is { } reason
                ? new Measurement<int>(1, new KeyValuePair<string, object?>("synchro.slot.invalidation_reason", reason), _slotTag)
                : Tagged(slot.WalStatus == "lost" ? 1 : 0);
        }
    }

    private IEnumerable<Measurement<int>> SlotFailover()
    {
        if (_slotHealth is { Failover: { } failover, Synced: var synced })
            yield return new Measurement<int>(failover ? 1 : 0, new KeyValuePair<string, object?>("synchro.slot.synced", synced ?? false), _slotTag);
    }

    /// <summary>A measurement of an observable instrument, tagged with the slot (after any tag of its own).</summary>
    private Measurement<T> Tagged<T>(T value) where T : struct => new(value, _slotTag);

    private sealed record StateAndFailure(WalPipelineState State, Exception? Failure);

    private sealed record RetryEpisode(int Attempt, DateTimeOffset Since);
}
