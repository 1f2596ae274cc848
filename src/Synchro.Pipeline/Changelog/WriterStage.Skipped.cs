using Microsoft.Extensions.Logging;
using Npgsql;
using Synchro.Pipeline.Buckets;
using Synchro.Pipeline.Decoding;
using Synchro.Pipeline.Decoding.Items;
using Synchro.Pipeline.Diagnostics;
using Synchro.Pipeline.Protocol;

namespace Synchro.Pipeline.Changelog;

/// <summary>
/// The transaction an operator asked to skip: its changes are kept in <c>sync_rule_failures</c>, where
/// <c>replay-failures</c> can apply them later, and none reaches the changelog or the edges. The request is deleted and
/// the position moves past the transaction in the same database transaction (invariant 1 of docs/architecture.md).
/// </summary>
internal sealed partial class WriterStage
{
    // Changes of the skipped transaction kept so far (it may come in several items).
    private int _skippedChanges;

    private async Task WriteSkippedAsync(NpgsqlConnection connection, SkippedChanges skipped, CancellationToken cancellationToken)
    {
        var batch = skipped.Changes;
        try
        {
            await KeepSkippedAsync(connection, batch, SkipReason(skipped.Transaction.CommitLsn), cancellationToken).ConfigureAwait(false);
            _skippedChanges += batch.Count;
        }
        finally
        {
            batch.Release();
        }
        if (!skipped.EndsTransaction)
            return;
        var transaction = skipped.Transaction;
        await ChangelogStore.DeleteSkipAsync(connection, slotName, transaction.CommitLsn, cancellationToken).ConfigureAwait(false);
        var changes = _skippedChanges;
        _skippedChanges = 0;
        await CommitAsync(connection, skipped.EndLsn, 1, [], cancellationToken).ConfigureAwait(false);
        LogTransactionSkipped(logger, transaction.Xid, transaction.CommitLsn, transaction.CommitTime, changes, transaction.Undecodable, transaction.Truncates);
    }

    /// <summary>Writes every change of <paramref name="batch"/> to <c>sync_rule_failures</c> with <paramref name="reason"/>.</summary>
    private async Task KeepSkippedAsync(NpgsqlConnection connection, ChangeBatch batch, string reason, CancellationToken cancellationToken)
    {
        if (batch.Count == 0)
            return;
        var failures = _failures;
        failures.Clear();
        for (var i = 0; i < batch.Count; i++)
        {
            var change = batch[i];
            failures.Add(new RuleFailure(change.Table.ChangelogName, batch.RecordId(i), change.Operation, reason, RowJson.Payload(batch, change)));
        }
        await ChangelogStore.WriteRuleFailuresAsync(connection, failures, cancellationToken).ConfigureAwait(false);
    }

    private static string SkipReason(Lsn commitLsn)
        => $"skipped on purpose with the transaction committed at {commitLsn} (synchro-pipeline skip --lsn {commitLsn}); replay-failures applies it to the changelog";

    [LoggerMessage(EventId = EventIds.TransactionSkipped, Level = LogLevel.Warning,
        Message = "Skipped the source transaction {Xid} committed at {CommitLsn} ({CommitTime:O}) as asked: {Changes} change(s) kept in sync_rule_failures for replay-failures, "
            + "none written to the changelog; {Undecodable} row(s) that could not be decoded under the registration and {Truncates} TRUNCATE(s) were skipped with it (resync those tables' clients if any)")]
    private static partial void LogTransactionSkipped(ILogger logger, uint xid, Lsn commitLsn, DateTime commitTime, int changes, int undecodable, int truncates);
}
