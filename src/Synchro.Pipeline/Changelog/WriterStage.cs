using System.Diagnostics;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Npgsql;
using Synchro.Pipeline.Buckets;
using Synchro.Pipeline.Diagnostics;
using Synchro.Pipeline.Protocol;
using Synchro.Pipeline.Registry;
using Synchro.Pipeline.Decoding;

namespace Synchro.Pipeline.Changelog;

/// <summary>
/// The changelog writer: one database transaction per batch (held open across the chunks of a
/// source transaction larger than the limits) that loads the batch's edges, assigns buckets,
/// writes changelog rows by binary COPY, applies the net edge changes, records rule failures and
/// writes the position — then commits and tells the committer.
/// </summary>
/// <remarks>
/// Invariant 1: the position row is written in the same database transaction as the rows it covers
/// and only ever names the end of a whole source transaction. Invariant 3: one writer, batches in
/// commit order, rows in change order, so <c>seq</c> follows commit order.
/// </remarks>
internal sealed partial class WriterStage(
    ChannelReader<ChangeBatch> input,
    ChannelWriter<Lsn> committed,
    NpgsqlDataSource changelog,
    NpgsqlDataSource source,
    string slotName,
    TableRegistry registry,
    IBucketAssigner assigner,
    PipelineMetrics metrics,
    TimeSpan slowBatchThreshold,
    ILogger logger)
{
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        Exception? error = null;
        try
        {
            await using var connection = await changelog.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            // Invariant 2: the committer confirms a batch to the server once its commit returns, so every
            // commit of this connection must be durable then, whatever the server's default.
            await using (var durable = new NpgsqlCommand("SET synchronous_commit = on", connection))
                await durable.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            await using var sourceConnection = await source.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            NpgsqlTransaction? transaction = null;
            var changesInTransaction = 0;
            var started = 0L;
            try
            {
                await foreach (var batch in input.ReadAllAsync(cancellationToken).ConfigureAwait(false))
                {
                    // Invariant: every batch taken from the channel is released exactly once, after its last use
                    // (written, and committed when it ends the transaction) or when writing it failed.
                    try
                    {
                        // The decoder's failure, behind the whole transactions it sent first; an open transaction rolls back.
                        if (batch.Failure is { } failure)
                            throw failure;
                        metrics.Writing(batch);
                        if (transaction is null)
                        {
                            started = Stopwatch.GetTimestamp();
                            transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
                        }
                        await WriteAsync(connection, sourceConnection, batch, cancellationToken).ConfigureAwait(false);
                        changesInTransaction += batch.Count;
                        if (batch.Messages is { Count: > 0 } messages)
                            _messages.AddRange(messages);
                        if (batch.Prepared is { } prepared)
                            changesInTransaction += await ApplyPreparedAsync(connection, sourceConnection, prepared, cancellationToken).ConfigureAwait(false);
                        if (!batch.EndsTransaction)
                            continue;

                        await ChangelogStore.SavePositionAsync(connection, slotName, batch.EndLsn, cancellationToken).ConfigureAwait(false);
                        await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
                        await transaction.DisposeAsync().ConfigureAwait(false);
                        transaction = null;
                        await DeliverMessagesAsync(cancellationToken).ConfigureAwait(false);
                        metrics.BatchCommitted(changesInTransaction, batch, started);
                        var elapsed = Stopwatch.GetElapsedTime(started);
                        if (elapsed > slowBatchThreshold)
                            LogSlowBatch(logger, changesInTransaction, batch.Transactions, elapsed.TotalSeconds, slowBatchThreshold.TotalSeconds);
                        changesInTransaction = 0;
                        await committed.WriteAsync(batch.EndLsn, cancellationToken).ConfigureAwait(false);
                    }
                    finally
                    {
                        batch.Release();
                    }
                }
            }
            finally
            {
                // An open transaction here holds part of an unfinished source transaction: roll it back.
                if (transaction is not null)
                    await transaction.DisposeAsync().ConfigureAwait(false);
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

    private async Task WriteAsync(NpgsqlConnection connection, NpgsqlConnection sourceConnection, ChangeBatch batch, CancellationToken cancellationToken)
    {
        if (batch.TruncatedTables.Count > 0)
        {
            await TruncateAsync(connection, batch, cancellationToken).ConfigureAwait(false);
            return;
        }
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
        var loading = ChangelogStore.LoadEdgesAsync(connection, _records, cancellationToken);
        var assigning = assigner.AssignAsync(new BucketAssignmentBatch(assignments, registry, sourceConnection, _bucketIds), cancellationToken);
        try
        {
            await assigning.ConfigureAwait(false);
        }
        finally
        {
            // Never leave the edge query running on the connection, whatever the assigner did.
            await ((Task)loading).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
        var overlay = _overlay;
        overlay.Reset(await loading.ConfigureAwait(false));
        var rows = _rows;
        var failures = _failures;
        rows.Clear();
        failures.Clear();
        for (var i = 0; i < batch.Count; i++)
        {
            var change = batch[i];
            var key = _keys[i];
            if (overlay.ApplyDecision(key, change.Operation, assignments[i], rows) is { } failure)
                failures.Add(new RuleFailure(key.TableName, key.RecordId, change.Operation, failure, RowJson.Payload(batch, change)));
        }

        _added.Clear();
        _removed.Clear();
        overlay.NetChanges(_added, _removed);
        await ChangelogStore.WriteChangelogAsync(connection, rows, cancellationToken).ConfigureAwait(false);
        await ChangelogStore.ApplyEdgesAsync(connection, _added, _removed, cancellationToken).ConfigureAwait(false);
        if (failures.Count > 0)
        {
            await ChangelogStore.WriteRuleFailuresAsync(connection, failures, cancellationToken).ConfigureAwait(false);
            LogRuleFailures(logger, failures.Count, failures[0].TableName, failures[0].RecordId, failures[0].ErrorText);
        }
        metrics.ChangelogRowsWritten(rows.Count, failures.Count);
    }

    /// <summary>The change's decoded columns as a JSON object, typed by column type, kept with a rule failure for replay.</summary>

    [LoggerMessage(EventId = EventIds.RuleFailures, Level = LogLevel.Warning,
        Message = "{Count} change(s) of this batch failed their bucket rule and were recorded in sync_rule_failures instead of the changelog; first: {Table} {RecordId}: {Error}")]
    private static partial void LogRuleFailures(ILogger logger, int count, string table, string recordId, string error);

    [LoggerMessage(EventId = EventIds.SlowBatch, Level = LogLevel.Warning,
        Message = "A batch of {Changes} change(s) in {Transactions} source transaction(s) took {Seconds:F1} s to write (threshold {Threshold:F1} s). "
            + "The changelog database is slow or contended: check its load, locks on the sidecar tables, and index bloat; the lag grows while this lasts.")]
    private static partial void LogSlowBatch(ILogger logger, int changes, int transactions, double seconds, double threshold);
}
