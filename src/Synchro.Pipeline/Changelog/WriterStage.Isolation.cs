using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Npgsql;
using Synchro.Pipeline.Buckets;
using Synchro.Pipeline.Decoding;
using Synchro.Pipeline.Diagnostics;
using Synchro.Pipeline.Postgres;

namespace Synchro.Pipeline.Changelog;

/// <summary>
/// Writing a batch whose buckets are decided, and the backstop of invariant 7 of docs/architecture.md: a change the
/// changelog refuses becomes a rule failure, and everything around it is written, in order, exactly once.
/// </summary>
/// <remarks>
/// <para>
/// A batch is written as one part under a savepoint: its changelog rows (one COPY), its net edge changes and its rule
/// failures. When the server refuses a value — SQLSTATE class 22, 23 or 54 (<see cref="PostgresErrors.IsDataError"/>):
/// an index row too large, a CHECK or a trigger's rejection, an invalid byte sequence — the part is rolled back to its
/// savepoint and its changes are written in two halves, each a part of its own, recursively and in order, until the
/// single changes the server refuses are found: each becomes a <c>sync_rule_failures</c> row carrying the SQLSTATE and
/// the server's message, with no changelog rows and no edge change. The checks made before writing
/// (<see cref="ChangelogLimits"/>, the assigners') leave this path for what they cannot foresee.
/// </para>
/// <para>
/// Invariant: the edge overlay always starts a part from the edges the database holds — as loaded for the batch,
/// changed by the parts written since (<see cref="EdgeOverlay.Settle"/>) and not by those rolled back
/// (<see cref="EdgeOverlay.Discard"/>) — so a change after a refused one sees the edges without it. Parts are written in
/// change order and a rolled-back part's rows never stay, so <c>seq</c> still follows commit order (with gaps where rows
/// were rolled back, as after any rolled-back transaction). Savepoints nest no deeper than the batches the database
/// transaction holds: a refused part is rolled back to and released, a part written while isolating is released.
/// </para>
/// <para>
/// Cost: the normal path adds one savepoint per batch and no round trip: SAVEPOINT goes with the batch's first write,
/// and a batch that ends its source transaction leaves it to the commit (the chunks of a larger one release theirs, a
/// round trip each). Each savepoint that writes is a subtransaction, so a source transaction written in more than 64
/// chunks overflows the server's per-backend subtransaction cache until it commits. A refused change costs one to two
/// more writes of the batch's rows and a savepoint per part tried (about twice the base-2 logarithm of the batch size);
/// docs/performance.md has the figures. Errors of other classes (a lost connection, cancellation, a missing table or
/// privilege) are not the values' fault and end the run as before. The rule-failure insert itself cannot fail on data:
/// its texts are made storable and its payload is bounded JSON that <c>jsonb</c> holds (<see cref="RowJson.Payload"/>).
/// </para>
/// </remarks>
internal sealed partial class WriterStage
{
    /// <summary>The longest ids the changelog takes; checked before anything is written.</summary>
    public ChangelogLimits Limits { get; init; } = ChangelogLimits.Default;

    // The batch being written: its rule failures and refused changes, for one log line each.
    private int _ruleFailureCount;
    private RuleFailure? _firstRuleFailure;
    private int _refusedCount;
    private RuleFailure? _firstRefused;

    /// <summary>Writes the batch's changes, decided by <paramref name="assignments"/>, from the edges <see cref="_overlay"/> was reset to.</summary>
    private async Task WriteDecidedAsync(NpgsqlConnection connection, NpgsqlConnection sourceConnection, ChangeBatch batch, IReadOnlyList<BucketAssignment> assignments, CancellationToken cancellationToken)
    {
        _ruleFailureCount = 0;
        _firstRuleFailure = null;
        _refusedCount = 0;
        _firstRefused = null;
        var started = Stopwatch.GetTimestamp();
        // A batch that ends its source transaction is committed next, so its savepoint need not be released: the commit
        // takes it along, and the normal path pays no round trip for it.
        _moved.Clear();
        _inserted.Clear();
        await WritePartAsync(connection, batch, assignments, 0, batch.Count, cancellationToken, releaseWhenWritten: !batch.EndsTransaction).ConfigureAwait(false);
        if (_moved.Count > 0)
            await CascadeMovesAsync(connection, sourceConnection, cancellationToken).ConfigureAwait(false);
        if (_ruleFailureCount > 0)
            LogRuleFailures(logger, _ruleFailureCount, _firstRuleFailure!.TableName, _firstRuleFailure.RecordId, _firstRuleFailure.ErrorText);
        if (_refusedCount > 0)
        {
            LogRefused(logger, _refusedCount, batch.Count, Stopwatch.GetElapsedTime(started).TotalMilliseconds,
                _firstRefused!.TableName, _firstRefused.RecordId, _firstRefused.ErrorText);
        }
    }

    /// <summary>
    /// Writes changes <paramref name="start"/> to <paramref name="end"/> (exclusive) as one part under a savepoint; when the
    /// server refuses a value, rolls the part back and writes its halves instead (see the class remarks).
    /// </summary>
    private async Task WritePartAsync(
        NpgsqlConnection connection, ChangeBatch batch, IReadOnlyList<BucketAssignment> assignments, int start, int end, CancellationToken cancellationToken,
        bool releaseWhenWritten = true)
    {
        var rows = _rows;
        var failures = _failures;
        rows.Clear();
        failures.Clear();
        _added.Clear();
        _removed.Clear();
        for (var i = start; i < end; i++)
        {
            var change = batch[i];
            var key = _keys[i];
            if (change.Operation == ChangeOperation.Insert)
                NoteInsert(key);
            if (_overlay.ApplyDecision(key, change.Operation, assignments[i], rows) is { } failure)
                failures.Add(new RuleFailure(key.TableName, key.RecordId, change.Operation, failure, RowJson.Payload(batch, change)));
        }
        _overlay.NetChanges(_added, _removed);
        NoteMoves();
        if (rows.Count == 0 && failures.Count == 0 && _added.Count == 0 && _removed.Count == 0)
        {
            _overlay.Settle();
            return;
        }

        ChangelogStore.StartPart(_transaction!);
        try
        {
            await ChangelogStore.WriteChangelogAsync(connection, rows, cancellationToken).ConfigureAwait(false);
            await ChangelogStore.ApplyEdgesAsync(connection, _added, _removed, cancellationToken).ConfigureAwait(false);
            await ChangelogStore.WriteRuleFailuresAsync(connection, failures, cancellationToken).ConfigureAwait(false);
        }
        catch (PostgresException error) when (PostgresErrors.IsDataError(error))
        {
            // Rolled back to and released, so parts never nest however many are refused.
            await ChangelogStore.UndoPartAsync(connection, cancellationToken).ConfigureAwait(false);
            _overlay.Discard();
            await IsolateAsync(connection, batch, assignments, start, end, error, cancellationToken).ConfigureAwait(false);
            return;
        }
        if (releaseWhenWritten)
            await ChangelogStore.EndPartAsync(connection, cancellationToken).ConfigureAwait(false);
        _overlay.Settle();
        if (failures.Count > 0)
        {
            _firstRuleFailure ??= failures[0];
            _ruleFailureCount += failures.Count;
        }
        RowsWritten(rows.Count, failures.Count);
    }

    /// <summary>After the part <paramref name="start"/>..<paramref name="end"/> was refused with <paramref name="error"/>: its halves, or the one change that is refused.</summary>
    private async Task IsolateAsync(
        NpgsqlConnection connection, ChangeBatch batch, IReadOnlyList<BucketAssignment> assignments, int start, int end, PostgresException error, CancellationToken cancellationToken)
    {
        if (end - start > 1)
        {
            var middle = start + ((end - start) / 2);
            await WritePartAsync(connection, batch, assignments, start, middle, cancellationToken).ConfigureAwait(false);
            await WritePartAsync(connection, batch, assignments, middle, end, cancellationToken).ConfigureAwait(false);
            return;
        }
        // The change the changelog refuses: recorded with the server's reason; no rows, and the edges stay as they are.
        var change = batch[start];
        var key = _keys[start];
        var refused = new RuleFailure(key.TableName, key.RecordId, change.Operation,
            $"the changelog refused the change ({error.SqlState}): {error.MessageText}", RowJson.Payload(batch, change));
        await ChangelogStore.WriteRuleFailuresAsync(connection, [refused], cancellationToken).ConfigureAwait(false);
        _firstRefused ??= refused;
        _refusedCount++;
        RowsWritten(0, 1);
    }

    [LoggerMessage(EventId = EventIds.ChangesRefused, Level = LogLevel.Warning,
        Message = "The changelog refused {Count} change(s) of a batch of {Changes}; they were recorded in sync_rule_failures and the rest written around them "
            + "(the batch took {Milliseconds:F0} ms). First: {Table} {RecordId}: {Error}. Fix the value or the constraint that refuses it, then replay the failures (replay-failures).")]
    private static partial void LogRefused(ILogger logger, int count, int changes, double milliseconds, string table, string recordId, string error);
}
