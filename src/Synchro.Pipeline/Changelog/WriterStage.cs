using System.Diagnostics;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Npgsql;
using Synchro.Pipeline.Buckets;
using Synchro.Pipeline.Diagnostics;
using Synchro.Pipeline.Protocol;
using Synchro.Pipeline.Registry;
using Synchro.Pipeline.Decoding;
using Synchro.Pipeline.Decoding.Items;
using Synchro.Pipeline.Postgres;

namespace Synchro.Pipeline.Changelog;

/// <summary>
/// The changelog writer: one database transaction per batch (held open across the chunks of a
/// source transaction larger than the limits) that loads the batch's edges, assigns buckets,
/// writes changelog rows by binary COPY, applies the net edge changes, records rule failures and
/// writes the position — then commits and tells the committer.
/// </summary>
/// <remarks>
/// Invariant 1 of docs/architecture.md: the position row is written in the same database transaction as the rows it covers
/// and only ever names the end of a whole source transaction. Invariant 3: one writer, batches in
/// commit order, rows in change order, so <c>seq</c> follows commit order.
/// </remarks>
internal sealed partial class WriterStage(
    ChannelReader<DecodedItem> input,
    ChannelWriter<CommitReceipt> committed,
    NpgsqlDataSource changelog,
    NpgsqlDataSource source,
    string slotName,
    TableRegistry registry,
    BatchLimits limits,
    IBucketAssigner assigner,
    PipelineMetrics metrics,
    TimeSpan slowBatchThreshold,
    ILogger logger)
{
    /// <summary>The changelog lock whose session the writer writes on; null to write on a connection of <c>changelog</c> (benchmarks).</summary>
    public ChangelogLock? Lock { get; init; }

    /// <summary>The statements' timeouts (invariant: the changelog connection's session has <see cref="StatementKind.BatchWrite"/>'s); null leaves the server's.</summary>
    public StatementTimeouts? Timeouts { get; init; }

    // The source connection's statement_timeout, set by the rules for their kind of statement.
    private SessionTimeout? _sourceTimeout;

    // The open changelog transaction (null between source transactions) and what it holds so far.
    private NpgsqlTransaction? _transaction;
    private int _changesInTransaction;
    private long _started;

    /// <summary>Writes items until the decoder completes its channel or <paramref name="stopping"/>.</summary>
    /// <param name="stopping">Ends the stage after the item being written: a stop never cuts a batch, it finishes or rolls back.</param>
    /// <param name="aborting">Cancels the work in flight (the stop's grace ran out); the only token the database calls get.</param>
    public async Task RunAsync(CancellationToken stopping, CancellationToken aborting)
    {
        Exception? error = null;
        // A batch's spans hang under its decode span, never under the span that started the pipeline.
        Activity.Current = null;
        try
        {
            // Invariant 9: with the changelog lock, every write goes through the session that holds it.
            await using var owned = Lock is null ? await changelog.OpenConnectionAsync(aborting).ConfigureAwait(false) : null;
            var connection = owned ?? await Lock!.EnsureAsync(aborting).ConfigureAwait(false);
            await using var sourceConnection = await source.OpenConnectionAsync(aborting).ConfigureAwait(false);
            var origin = TagOwnWrites ? await OwnWritesOrigin.TrySetUpAsync(connection, sourceConnection, slotName, OwnWritesOrigin.Session.Writer, logger, aborting).ConfigureAwait(false) : null;
            // A refused origin can reopen the connection, which ends the lock's session: the lock is taken again first.
            if (Lock is not null)
                connection = await Lock.EnsureAsync(aborting).ConfigureAwait(false);
            try
            {
                // Invariant 2: the committer confirms a batch to the server once its commit returns, so every
                // commit of this connection must be durable then, whatever the server's default.
                await using (var durable = new NpgsqlCommand("SET synchronous_commit = on", connection))
                    await durable.ExecuteNonQueryAsync(aborting).ConfigureAwait(false);
                if (Timeouts is { } timeouts)
                {
                    await SessionTimeout.SetAsync(connection, timeouts, StatementKind.BatchWrite, aborting).ConfigureAwait(false);
                    _sourceTimeout = new SessionTimeout(sourceConnection, timeouts);
                }
                while (await input.WaitToReadAsync(stopping).ConfigureAwait(false))
                {
                    // Items already queued wait for the next start once the run is stopping.
                    while (!stopping.IsCancellationRequested && input.TryRead(out var item))
                        await WriteTimedAsync(connection, sourceConnection, item, aborting).ConfigureAwait(false);
                }
            }
            finally
            {
                // An open transaction here holds part of an unfinished source transaction: roll it back.
                if (_transaction is not null)
                    await _transaction.DisposeAsync().ConfigureAwait(false);
                _transaction = null;
                if (origin is not null)
                    await OwnWritesOrigin.ReleaseAsync(connection, origin).ConfigureAwait(false);
            }
        }
        catch (Exception e)
        {
            error = e;
            throw;
        }
        finally
        {
            committed.TryComplete(error);
        }
    }

    /// <summary><see cref="WriteAsync"/>, a statement timeout of the changelog connection reported as its kind's.</summary>
    private async Task WriteTimedAsync(NpgsqlConnection connection, NpgsqlConnection sourceConnection, DecodedItem item, CancellationToken cancellationToken)
    {
        var started = Stopwatch.GetTimestamp();
        var changes = item is ChangeBatch batch ? batch.Count : 0;
        try
        {
            await WriteAsync(connection, sourceConnection, item, cancellationToken).ConfigureAwait(false);
        }
        catch (PostgresException e) when (AsTimeout(e, item, changes, Stopwatch.GetElapsedTime(started)) is { } timeout)
        {
            // The transaction is rolled back by the caller; the run loop retries from the persisted position.
            throw timeout;
        }
    }

    private async Task WriteAsync(NpgsqlConnection connection, NpgsqlConnection sourceConnection, DecodedItem item, CancellationToken cancellationToken)
    {
        switch (item)
        {
            case ChangeBatch batch:
                // Invariant: every batch taken from the channel is released exactly once, after its last use
                // (written, and committed when it ends the transaction) or when writing it failed.
                using (var activity = PipelineTracing.Start(PipelineTracing.Write, batch.Trace))
                {
                    try
                    {
                        _batchRows = _batchFailures = 0;
                        metrics.Writing(batch.FirstCommitTime);
                        await BeginAsync(connection, cancellationToken).ConfigureAwait(false);
                        await WriteChangesAsync(connection, sourceConnection, batch, cancellationToken).ConfigureAwait(false);
                        _changesInTransaction += batch.Count;
                        if (batch.EndsTransaction)
                            await CommitAsync(connection, batch.EndLsn, batch.Transactions, batch.CommitTimes, cancellationToken).ConfigureAwait(false);
                        if (activity is { IsAllDataRequested: true })
                            TagWrite(activity, batch);
                    }
                    catch (Exception e)
                    {
                        activity.Failed(e);
                        throw;
                    }
                    finally
                    {
                        batch.Release();
                    }
                }
                break;
            case TruncateItem truncate:
                await BeginAsync(connection, cancellationToken).ConfigureAwait(false);
                await TruncateAsync(connection, truncate.Tables, truncate.Options, cancellationToken).ConfigureAwait(false);
                break;
            case PreparedChunk chunk:
                await BeginAsync(connection, cancellationToken).ConfigureAwait(false);
                await StorePreparedChunkAsync(connection, chunk, cancellationToken).ConfigureAwait(false);
                break;
            case PreparedStep step:
                await BeginAsync(connection, cancellationToken).ConfigureAwait(false);
                var (transactions, changed) = await ApplyPreparedStepAsync(connection, sourceConnection, step, cancellationToken).ConfigureAwait(false);
                if (changed || _messages.Count > 0)
                    await CommitAsync(connection, step.EndLsn, transactions, transactions > 0 ? [step.CommitTime] : [], cancellationToken).ConfigureAwait(false);
                else
                    await RollBackAsync(cancellationToken).ConfigureAwait(false);
                break;
            case SkippedChanges skipped:
                await BeginAsync(connection, cancellationToken).ConfigureAwait(false);
                await WriteSkippedAsync(connection, skipped, cancellationToken).ConfigureAwait(false);
                break;
            case LogicalMessageItem message:
                _messages.Add(message.Message);
                break;
            case Heartbeat heartbeat:
                // Invariant: a heartbeat comes only between source transactions, so no changelog transaction is open.
                Debug.Assert(_transaction is null, "a heartbeat arrived inside a source transaction");
                await BeginAsync(connection, cancellationToken).ConfigureAwait(false);
                await CommitAsync(connection, heartbeat.Position, 0, [], cancellationToken).ConfigureAwait(false);
                break;
            case DecoderFailure failure:
                // Behind the whole transactions sent before it; an open transaction rolls back.
                throw failure.Error;
            default:
                throw new InvalidOperationException($"The writer got an item it does not know: {item.GetType().Name}.");
        }
    }

    private async ValueTask BeginAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        if (_transaction is not null)
            return;
        _started = Stopwatch.GetTimestamp();
        _transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Ends an open transaction that wrote nothing; the position passes it with the next commit (invariant 9).</summary>
    private async Task RollBackAsync(CancellationToken cancellationToken)
    {
        await _transaction!.RollbackAsync(cancellationToken).ConfigureAwait(false);
        await _transaction.DisposeAsync().ConfigureAwait(false);
        _transaction = null;
    }

    /// <summary>
    /// Invariant 1: persists <paramref name="position"/> in the open transaction and commits it; then delivers the
    /// messages it covers and hands the position to the committer.
    /// </summary>
    private async Task CommitAsync(NpgsqlConnection connection, Lsn position, int transactions, IReadOnlyList<DateTime> commitTimes, CancellationToken cancellationToken)
    {
        // A heartbeat's commit moves the position alone: no span.
        var activity = transactions > 0 || _changesInTransaction > 0 ? PipelineTracing.StartChild(PipelineTracing.Commit) : null;
        try
        {
            if (activity is { IsAllDataRequested: true })
            {
                activity.SetTag(PipelineTracing.SlotTag, slotName);
                activity.SetTag(PipelineTracing.EndLsnTag, position.ToString());
                activity.SetTag(PipelineTracing.ChangesTag, _changesInTransaction);
                activity.SetTag(PipelineTracing.TransactionsTag, transactions);
            }
            await SavePositionAsync(connection, position, cancellationToken).ConfigureAwait(false);
            await _transaction!.CommitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            activity.Failed(e);
            throw;
        }
        finally
        {
            activity?.Dispose();
        }
        await _transaction.DisposeAsync().ConfigureAwait(false);
        _transaction = null;
        await DeliverMessagesAsync(cancellationToken).ConfigureAwait(false);
        var changes = _changesInTransaction;
        _changesInTransaction = 0;
        metrics.BatchCommitted(changes, transactions, commitTimes, _started);
        var elapsed = Stopwatch.GetElapsedTime(_started);
        if (elapsed > slowBatchThreshold)
            LogSlowBatch(logger, changes, transactions, elapsed.TotalSeconds, slowBatchThreshold.TotalSeconds);
        await committed.WriteAsync(new CommitReceipt(position, PipelineTracing.ContextOf(activity)), cancellationToken).ConfigureAwait(false);
    }

    // Rows and rule failures of the batch being written, for its span.
    private int _batchRows;
    private int _batchFailures;

    /// <summary>A part of the batch (or its cascade) was written: counted in the metrics and for the batch's span.</summary>
    private void RowsWritten(int rows, int failures)
    {
        _batchRows += rows;
        _batchFailures += failures;
        metrics.ChangelogRowsWritten(rows, failures);
    }

    private void TagWrite(Activity activity, ChangeBatch batch)
    {
        batch.TagSpan(activity, slotName);
        activity.SetTag(PipelineTracing.RowsTag, _batchRows);
        activity.SetTag(PipelineTracing.RuleFailuresTag, _batchFailures);
    }

    /// <summary>The assigner's call for a batch in a span of its own, a child of the batch's write span.</summary>
    private async Task AssignTracedAsync(BucketAssignmentBatch batch, CancellationToken cancellationToken)
    {
        using var activity = PipelineTracing.StartChild(PipelineTracing.Assign);
        if (activity is { IsAllDataRequested: true })
        {
            activity.SetTag(PipelineTracing.SlotTag, slotName);
            activity.SetTag(PipelineTracing.ChangesTag, batch.Changes.Count);
        }
        try
        {
            await assigner.AssignAsync(batch, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            activity.Failed(e);
            throw;
        }
    }

    // Reused from batch to batch (one writer, one batch at a time), so a batch allocates little besides its strings.
    private readonly List<RecordKey> _keys = [];
    private readonly HashSet<RecordKey> _distinct = [];
    private readonly List<RecordKey> _records = [];
    private readonly BucketAssignmentPool _assignments = new();
    private readonly BucketIdCache _bucketIds = new();
    private readonly EdgeOverlay _overlay = new();
    private readonly List<ChangelogRow> _rows = [];
    private readonly List<RuleFailure> _failures = [];
    private readonly List<(RecordKey Record, string BucketId)> _added = [];
    private readonly List<(RecordKey Record, string BucketId)> _removed = [];

    private async Task WriteChangesAsync(NpgsqlConnection connection, NpgsqlConnection sourceConnection, ChangeBatch batch, CancellationToken cancellationToken)
    {
        if (batch.Count == 0)
            return;

        // The writer makes the strings the decoder does not: one record key per change.
        _keys.Clear();
        _distinct.Clear();
        _records.Clear();
        for (var i = 0; i < batch.Count; i++)
        {
            var key = new RecordKey(batch[i].Table.ChangelogName, batch.RecordId(i));
            _keys.Add(key);
            if (_distinct.Add(key))
                _records.Add(key);
        }

        // Buckets are assigned while the edges load: they use different connections. The reference evaluates
        // no rule for a delete of a record that is in buckets; the walk below ignores the assignment of such a
        // delete (its failure included), so evaluating it here changes nothing but lets the two overlap.
        var assignments = _assignments.For(batch, _keys);
        // Invariant 7: a record id the changelog cannot hold fails its change before its rule runs (the rule then skips it).
        foreach (var assignment in assignments)
            Limits.CheckRecordId(assignment);
        var loading = ChangelogStore.LoadEdgesAsync(connection, _records, cancellationToken);
        var toAssign = new BucketAssignmentBatch(assignments, registry, sourceConnection, _bucketIds) { SourceTimeout = _sourceTimeout };
        // The traced call is a state machine of its own: only made when someone listens.
        var assigning = PipelineTracing.Source.HasListeners() ? AssignTracedAsync(toAssign, cancellationToken) : assigner.AssignAsync(toAssign, cancellationToken);
        try
        {
            await assigning.ConfigureAwait(false);
        }
        finally
        {
            // Never leave the edge query running on the connection, whatever the assigner did.
            await ((Task)loading).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
        // Invariant 7: so does a bucket id it cannot hold, before anything is written.
        foreach (var assignment in assignments)
            Limits.CheckBuckets(assignment);
        _overlay.Reset(await loading.ConfigureAwait(false));
        await WriteDecidedAsync(connection, sourceConnection, batch, assignments, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// <paramref name="error"/>, raised by the changelog connection while <paramref name="item"/> was written, as the timeout of
    /// its kind of statement when it is one; null otherwise. The rules' statements on the source connection come as
    /// <see cref="StatementTimeoutException"/> already.
    /// </summary>
    private StatementTimeoutException? AsTimeout(PostgresException error, DecodedItem item, int changes, TimeSpan elapsed)
    {
        if (Timeouts is not { } timeouts)
            return null;
        var (kind, what) = item switch
        {
            TruncateItem truncate => (StatementKind.Truncate, $"Applying the TRUNCATE of {string.Join(", ", truncate.Tables)} (deleting the tables' bucket edges and writing a delete row for each)"),
            ChangeBatch => (StatementKind.BatchWrite, $"A statement writing a batch of {changes} change(s) to the changelog"),
            _ => (StatementKind.BatchWrite, "A statement of the changelog transaction"),
        };
        return PostgresErrors.IsStatementTimeout(error, timeouts.For(kind), elapsed) ? new StatementTimeoutException(kind, timeouts.For(kind), what, error) : null;
    }

    [LoggerMessage(EventId = EventIds.RuleFailures, Level = LogLevel.Warning,
        Message = "{Count} change(s) of this batch failed their bucket rule and were recorded in sync_rule_failures instead of the changelog; first: {Table} {RecordId}: {Error}")]
    private static partial void LogRuleFailures(ILogger logger, int count, string table, string recordId, string error);

    [LoggerMessage(EventId = EventIds.SlowBatch, Level = LogLevel.Warning,
        Message = "A batch of {Changes} change(s) in {Transactions} source transaction(s) took {Seconds:F1} s to write (threshold {Threshold:F1} s). "
            + "The changelog database is slow or contended: check its load, locks on the sidecar tables, and index bloat; the lag grows while this lasts.")]
    private static partial void LogSlowBatch(ILogger logger, int changes, int transactions, double seconds, double threshold);
}
