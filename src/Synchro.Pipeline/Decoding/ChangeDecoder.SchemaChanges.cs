using Synchro.Pipeline.Decoding.Items;
using Synchro.Pipeline.Protocol;
using Synchro.Pipeline.Registry;

namespace Synchro.Pipeline.Decoding;

// Schema changes mid-stream: every Relation message replaces the table's mapping (OnRelation), so a column added,
// dropped, renamed or retyped takes effect from the next row on. Only a registered column that is gone stops the pipeline.
internal sealed partial class ChangeDecoder
{
    /// <summary>
    /// A row of <paramref name="table"/> arrived under a relation without one of its registered columns: the pipeline
    /// must stop before this transaction, and a restart with a fixed registration must find everything before it written.
    /// </summary>
    /// <remarks>
    /// Throwing here would lose the whole transactions decoded into the current batch: a restart would read them again,
    /// and their rows (old schema) no longer match the fixed registration. So the failure travels to the writer as an
    /// item of its own, behind a batch cut at the last whole transaction; the writer commits that one (and its position)
    /// and then throws. Nothing after the failure is decoded. When this transaction was already cut into chunks, the
    /// chunks sit in the writer's open database transaction and roll back with it (and whole transactions that shared
    /// its first chunk with it are read again on restart).
    /// </remarks>
    private void FailMissingColumns(RelationInfo relation, TableRegistration table)
    {
        var missing = table.ReferencedColumns.Where(c => RelationMapping.FindColumn(relation, c) < 0).Select(c => $"'{c}'");
        var columns = string.Join(", ", relation.Columns.Select(c => c.Name));
        var error = new WalPipelineException(
            $"Registered column {string.Join(", ", missing)} of table {table} is not in the replication stream from the transaction "
            + $"committed at {_finalLsn} on: it was dropped or renamed (the table's published columns are now: {columns}), "
            + "or the publication's column list leaves it out. The pipeline stopped before that transaction, which stays in the slot "
            + "with everything after it. Fix the registration (or the table), then restart the pipeline; or, to go past this one "
            + $"transaction on purpose, run `synchro-pipeline skip --lsn {_finalLsn}` and restart (its other changes are kept in "
            + "sync_rule_failures for replay-failures).");
        FailBeforeTransaction(error);
    }

    /// <summary>Stops the pipeline before the open transaction: what came before it is committed, nothing after it is decoded.</summary>
    private void FailBeforeTransaction(WalPipelineException error)
    {
        _failed = true;
        _skipTransaction = true;
        if (_transactionStart is { } start)
            _batch.RollBack(start.Changes, start.Values);
        if (_batch.Transactions > 0)
            CutBatch();
        _ready.Enqueue(new DecoderFailure(error));
    }
}
