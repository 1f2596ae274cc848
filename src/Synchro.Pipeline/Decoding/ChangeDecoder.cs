using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Synchro.Pipeline.Decoding.Items;
using Synchro.Pipeline.Protocol;
using Synchro.Pipeline.Protocol.Messages;
using Synchro.Pipeline.Registry;

namespace Synchro.Pipeline.Decoding;

/// <summary>
/// Turns parsed pgoutput messages into the writer's items: <see cref="DecodedChange"/>s of registered tables cut into
/// <see cref="ChangeBatch"/>es at transaction boundaries (or in chunks inside a transaction larger than the limits),
/// and the other kinds of <see cref="DecodedItem"/> in stream order.
/// </summary>
/// <remarks>
/// Single-threaded; owned by the decoder stage. Transactions whose commit lies before the resume position were applied
/// before a restart and are skipped whole (invariant 1 of docs/architecture.md). Allocation-free per row: a row's referenced columns are
/// copied into the pooled arena of the batch it is decoded into (<see cref="ChangeBatch"/>), and batches come from a
/// pool the writer returns them to.
/// </remarks>
internal sealed partial class ChangeDecoder
{
    private readonly TableRegistry _registry;
    private readonly BatchLimits _limits;
    private readonly ILogger _logger;
    private readonly Lsn _resumeAfter;

    // Per relation OID: the relation the mapping was built for (a new Relation message replaces it),
    // and the mapping, or null for a table that is not registered.
    private readonly Dictionary<uint, (RelationInfo Relation, RelationMapping? Mapping)> _mappings = [];

    private readonly ChangeBatchPool _pool = new();
    private readonly Queue<DecodedItem> _ready = new();
    // The batch being filled; invariant: it holds whole transactions, then the part decoded so far of the open one.
    private ChangeBatch _batch;
    private bool _inTransaction;
    private bool _skipTransaction;
    private DateTime _commitTime;
    private Lsn _finalLsn;
    // Where the open transaction's changes start in _batch; null once a chunk of it was cut, or outside one.
    private (int Changes, (int Values, int Bytes) Values)? _transactionStart;
    // Whether the open transaction gave the writer anything: a change, a TRUNCATE or a message to deliver.
    private bool _transactionHasContent;
    // Set by a failure handed to the writer (ChangeDecoder.SchemaChanges.cs): nothing after it is decoded.
    private bool _failed;
    // The last position an item put on the channel (invariant: positions never decrease along the channel).
    private Lsn _sentPosition;

    public ChangeDecoder(TableRegistry registry, BatchLimits limits, Lsn resumeAfter, ILogger logger, Spill.SpillStore? spill = null)
    {
        _spill = spill;
        _registry = registry;
        _limits = limits;
        _resumeAfter = resumeAfter;
        _sentPosition = resumeAfter;
        _logger = logger;
        _batch = _pool.Rent();
    }

    /// <summary>The stream was started with <c>binary 'true'</c>: referenced columns' binary values are converted to text.</summary>
    public bool BinaryTuples { get; init; }

    /// <summary>Whether the batch being filled holds at least one whole transaction (or messages to deliver).</summary>
    public bool HasCompleteTransactions => _batch.Transactions > 0 || HasMessagesOutsideTransaction;

    /// <summary>True between Begin and Commit.</summary>
    public bool InTransaction => _inTransaction;

    /// <summary>Takes the next item for the writer, if any; a transaction being read back from a spill file yields its next piece.</summary>
    public bool TryTakeReady(out DecodedItem item)
    {
        if (_ready.Count == 0)
            ContinueReadBack();
        return _ready.TryDequeue(out item!);
    }

    /// <summary>The input is drained and the linger time is up: cuts the batch at its last whole transaction, if any.</summary>
    public void CutAtIdle()
    {
        if (_inTransaction || IsReadingBack)
            return;
        if (_batch.Transactions > 0)
            CutBatch();
        else if (_messages.Count > 0)
            SendHeartbeat(_batch.EndLsn);
    }

    internal void OnBegin(in BeginMessage message)
    {
        _inTransaction = true;
        // Invariant 1: the persisted position is the end of the last applied transaction, so a
        // transaction whose commit record lies before it was applied already.
        _skipTransaction = _failed || message.FinalLsn < _resumeAfter;
        _skippedByOrigin = false;
        _transactionHasContent = false;
        _commitTime = message.CommitTime;
        _finalLsn = message.FinalLsn;
        _transactionStart = (_batch.Count, _batch.ValueMark);
        if (_skipTransaction)
            return;
        StartSkipIfAsked(message.Xid, message.FinalLsn, _commitTime);
    }

    internal void OnCommit(in CommitMessage message)
    {
        _inTransaction = false;
        _transactionStart = null;
        if (_skipped is not null)
        {
            SendSkipped(message.EndLsn);
            return;
        }
        // A transaction skipped for its origin was handled: the position moves past it, as past any empty one.
        if (_skipTransaction && !_skippedByOrigin)
            return;
        // Invariant 9: a transaction that gives the writer nothing (one on tables that are not registered, the
        // pipeline's own changelog writes among them) never makes a changelog commit of its own; it rides along
        // with a batch that commits anyway, or the position passes it with the next batch or heartbeat.
        if (!_transactionHasContent && _batch.Transactions == 0)
            return;
        _batch.EndLsn = message.EndLsn;
        _batch.Transactions++;
        _batch.CommitTimes.Add(_commitTime);
        _batch.EndsTransaction = true;
        if (_batch.Count >= _limits.MaxRows || _batch.Bytes >= _limits.MaxBytes)
            CutBatch();
    }

    internal void OnRelation(in RelationMessage message)
    {
        // Mapped here, once per Relation message, so a row only looks its mapping up. A registered column missing
        // from the relation is reported by the first row that needs it (the relation may have no rows for us).
        var relation = message.Relation;
        _mappings.Remove(relation.Oid);
        if (Relations is not null)
        {
            // Resolved before the next message is parsed (DecoderStage), so before any change of the relation.
            _routes.Remove(relation.Oid);
            _unresolved.Add(relation);
            return;
        }
        MapRelation(relation, _registry.TryGet(relation.Schema, relation.Name, out var table) ? table : null);
    }

    private void MapRelation(RelationInfo relation, TableRegistration? table)
    {
        if (table is null)
            _mappings[relation.Oid] = (relation, null);
        else if (RelationMapping.TryCreate(relation, table, BinaryTuples, _registry) is { } mapping)
            _mappings[relation.Oid] = (relation, mapping);
    }

    internal void OnInsert(in InsertMessage message, int messageBytes)
    {
        if (Spilling)
        {
            if (Staging() is { } staging && DecodeInsert(message, staging))
                SpillStaged(message.Xid);
        }
        else if (!_skipTransaction && DecodeInsert(message, _batch))
        {
            Added(messageBytes);
        }
    }

    internal void OnUpdate(in UpdateMessage message, int messageBytes)
    {
        if (Spilling)
        {
            if (Staging() is { } staging && DecodeUpdate(message, staging))
                SpillStaged(message.Xid);
        }
        else if (!_skipTransaction && DecodeUpdate(message, _batch))
        {
            Added(messageBytes);
        }
    }

    internal void OnDelete(in DeleteMessage message, int messageBytes)
    {
        if (Spilling)
        {
            if (Staging() is { } staging && DecodeDelete(message, staging))
                SpillStaged(message.Xid);
        }
        else if (!_skipTransaction && DecodeDelete(message, _batch))
        {
            Added(messageBytes);
        }
    }

    internal void OnTruncate(in TruncateMessage message)
    {
        if (Spilling ? SpillSkipped : _skipTransaction)
            return;
        // Only the edges are used, not the columns: a registration whose columns changed still truncates.
        List<TruncatedTable>? tables = null;
        for (var i = 0; i < message.RelationCount; i++)
        {
            var relation = message.Relation(i);
            if (TableOf(relation) is not { } table)
                continue;
            var partition = _routes.TryGetValue(relation.Oid, out var route) ? route.Partition : null;
            if (partition is { Predicate: null } unfiltered)
            {
                if (_skipped is { } skipped)
                {
                    skipped.Undecodable++;
                    continue;
                }
                FailUnattributableTruncate(table, unfiltered);
                return;
            }
            AddTruncated(tables ??= [], new TruncatedTable(table, partition));
        }
        if (tables is null)
            return;
        if (Spilling)
            SpillTruncate(message.Xid, tables, message.Options);
        else
            SendTruncate(tables, message.Options);
    }

    /// <summary>Decodes an INSERT into <paramref name="into"/>; false when it adds no change (a table not registered).</summary>
    private bool DecodeInsert(in InsertMessage message, ChangeBatch into)
    {
        if (Map(message.Relation) is not { } mapping)
            return false;
        var mark = into.ValueMark;
        var values = mapping.Read(message.NewRow, into);
        if (!HasId(mapping, into, values, "inserted"))
        {
            into.TruncateValues(mark);
            return false;
        }
        mapping.ReadRow(message.NewRow, into);
        into.Add(new DecodedChange(mapping.Table, ChangeOperation.Insert, values, mapping.Layout));
        return true;
    }

    /// <summary>Decodes an UPDATE into <paramref name="into"/> (a delete and an insert when the id changed).</summary>
    private bool DecodeUpdate(in UpdateMessage message, ChangeBatch into)
    {
        if (Map(message.Relation) is not { } mapping)
            return false;
        var start = into.ValueMark;
        var values = mapping.Read(message.NewRow, into);
        // An id stored out of line and left unchanged arrives as 'u'; the server then sends the old key with it.
        if (message.OldRowKind != OldTupleKind.None && mapping.HasUnchangedId(into, values))
            mapping.ReadOldId(message.OldRow, into, values);
        if (!HasId(mapping, into, values, "updated"))
        {
            into.TruncateValues(start);
            return false;
        }
        mapping.ReadRow(message.NewRow, into);
        var hasOldRow = false;
        if (message.OldRowKind != OldTupleKind.None)
        {
            var mark = into.ValueMark;
            var oldValues = mapping.Read(message.OldRow, into);
            if (mapping.IdChanged(into, values, oldValues, message.OldRowKind == OldTupleKind.Key))
            {
                // The id itself changed: the old record is gone and a new one exists. Both go into this batch
                // (the insert's values are in its arena), so the limits are checked after the pair.
                mapping.ReadRow(message.OldRow, into, message.OldRowKind == OldTupleKind.Key);
                into.Add(new DecodedChange(mapping.Table, ChangeOperation.Delete, oldValues, mapping.Layout));
                into.Add(new DecodedChange(mapping.Table, ChangeOperation.Insert, values, mapping.Layout));
                return true;
            }
            into.TruncateValues(mark);
            // A function rule sees the old row too (REPLICA IDENTITY FULL, or the key columns of a changed key).
            hasOldRow = mapping.ReadRow(message.OldRow, into, message.OldRowKind == OldTupleKind.Key);
        }
        var operation = mapping.IsSoftDeleted(into, values) ? ChangeOperation.Delete : ChangeOperation.Update;
        into.Add(new DecodedChange(mapping.Table, operation, values, mapping.Layout, hasOldRow));
        return true;
    }

    /// <summary>Decodes a DELETE into <paramref name="into"/>; false for one that cannot be attributed (no id in the old row).</summary>
    private bool DecodeDelete(in DeleteMessage message, ChangeBatch into)
    {
        if (Map(message.Relation) is not { } mapping)
            return false;
        var mark = into.ValueMark;
        var values = mapping.Read(message.OldRow, into);
        if (!mapping.HasOldId(into, values, message.OldRowKind == OldTupleKind.Key))
        {
            into.TruncateValues(mark);
            LogUnattributableDelete(_logger, mapping.Table.QualifiedName, mapping.Table.IdColumnsText);
            return false;
        }
        mapping.ReadRow(message.OldRow, into, message.OldRowKind == OldTupleKind.Key);
        into.Add(new DecodedChange(mapping.Table, ChangeOperation.Delete, values, mapping.Layout));
        return true;
    }

    /// <summary>Accounts for the change(s) just added to the batch and cuts it when it is full.</summary>
    private void Added(int messageBytes)
    {
        HasContent();
        if (_batch.DecodeStarted == 0)
        {
            _batch.DecodeStarted = Stopwatch.GetTimestamp();
            _batch.FirstLsn = _finalLsn;
        }
        _batch.Bytes += messageBytes;
        // A transaction larger than the limits goes out in chunks; the writer holds one database
        // transaction open across them, so memory stays bounded and the result is still atomic.
        if (_batch.Count >= _limits.MaxRows || _batch.Bytes >= _limits.MaxBytes)
        {
            if (_skipped is not null)
            {
                SendSkipped(Lsn.Invalid);
                return;
            }
            _batch.EndsTransaction = false;
            CutBatch();
        }
    }

    /// <summary>The open transaction gives the writer something: the batch's lag counts from its commit time.</summary>
    private void HasContent()
    {
        if (!_inTransaction)
            return;
        _transactionHasContent = true;
        if (_batch.FirstCommitTime == default)
            _batch.FirstCommitTime = _commitTime;
    }

    /// <summary>Invariant 3: a TRUNCATE is an item of its own, after the changes before it and before those after it.</summary>
    private void SendTruncate(IReadOnlyList<TruncatedTable> tables, TruncateOptions options)
    {
        HasContent();
        if (_skipped is { } skipped)
        {
            skipped.Truncates++;
            return;
        }
        if (_batch.Count > 0 || _batch.Transactions > 0)
        {
            _batch.EndsTransaction = false;
            CutBatch();
        }
        _ready.Enqueue(new TruncateItem(tables, options));
    }

    /// <summary>Sends the batch being filled (after the messages its commit covers) and starts the next.</summary>
    private void CutBatch()
    {
        SendMessages();
        if (_batch.EndsTransaction)
            _sentPosition = Lsn.Max(_sentPosition, _batch.EndLsn);
        _ready.Enqueue(_batch);
        // A chunk's successor continues the same transaction.
        _transactionStart = null;
        _batch = _pool.Rent();
        _batch.FirstCommitTime = _inTransaction && _transactionHasContent ? _commitTime : default;
    }

    /// <summary>Nothing is pending up to <paramref name="position"/>: sends the messages waiting for a commit, then a heartbeat.</summary>
    private void SendHeartbeat(Lsn position)
    {
        SendMessages();
        _sentPosition = Lsn.Max(_sentPosition, position);
        _ready.Enqueue(new Heartbeat(_sentPosition));
        if (_batch.Count == 0 && _batch.Transactions == 0)
        {
            _batch.EndLsn = default;
            _batch.Bytes = 0;
        }
    }

    private RelationMapping? Map(RelationInfo relation)
    {
        if (_mappings.TryGetValue(relation.Oid, out var known) && ReferenceEquals(known.Relation, relation))
            return known.Mapping;
        RelationMapping? mapping = null;
        if (TableOf(relation) is { } table && (mapping = RelationMapping.TryCreate(relation, table, BinaryTuples, _registry)) is null)
        {
            // A transaction being skipped on purpose cannot stop the pipeline: its rows that cannot be decoded are counted.
            if (_skipped is { } skipped)
                skipped.Undecodable++;
            else
                FailMissingColumns(relation, table);
            return null;
        }
        _mappings[relation.Oid] = (relation, mapping);
        return mapping;
    }

    /// <summary>
    /// Whether the change at <paramref name="values"/> has its id; a row without one stops the pipeline (naming the
    /// transaction to skip), except in a transaction being skipped, where it is counted and dropped.
    /// </summary>
    private bool HasId(RelationMapping mapping, ChangeBatch batch, int values, string verb)
    {
        if (mapping.HasId(batch, values))
            return true;
        if (_skipped is { } skipped)
        {
            skipped.Undecodable++;
            return false;
        }
        throw new WalPipelineException(
            (mapping.Table.HasCompositeId
                ? $"A row {verb} in {mapping.Table} by the transaction committed at {_finalLsn} lacks a value of its id columns '{mapping.Table.IdColumnsText}' "
                    + "(an unchanged TOAST value the server did not send again). The id columns must not be stored out of line "
                    + "(ALTER TABLE ... ALTER COLUMN ... SET STORAGE MAIN, or REPLICA IDENTITY FULL); fix the table or register the right IdColumns, then restart; or, to go past this "
                : $"A row {verb} in {mapping.Table} by the transaction committed at {_finalLsn} has no value in its id column '{mapping.Table.IdColumnsText}'. "
                    + "The id column must be NOT NULL (and not TOASTed); fix the table or register the right IdColumn, then restart; or, to go past this ")
            + $"one transaction on purpose, run `synchro-pipeline skip --lsn {_finalLsn}` and restart.");
    }

    [LoggerMessage(EventId = Diagnostics.EventIds.UnattributableDelete, Level = LogLevel.Warning,
        Message = "A DELETE on {Table} carries no value for its id column(s) {IdColumn} and cannot be attributed to a record; it is skipped. "
            + "The table's REPLICA IDENTITY must include the id column(s) (ALTER TABLE ... REPLICA IDENTITY FULL, or make the id the primary key).")]
    private static partial void LogUnattributableDelete(ILogger logger, string table, string idColumn);
}
