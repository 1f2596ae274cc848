using System.Text.Unicode;
using Microsoft.Extensions.Logging;
using Synchro.Pipeline.Protocol;
using Synchro.Pipeline.Protocol.Messages;
using Synchro.Pipeline.Registry;

namespace Synchro.Pipeline.Decoding;

/// <summary>
/// Turns parsed pgoutput messages into <see cref="DecodedChange"/>s of registered tables and cuts
/// them into <see cref="ChangeBatch"/>es at transaction boundaries (or in chunks inside a
/// transaction larger than the limits).
/// </summary>
/// <remarks>
/// Single-threaded; owned by the decoder stage. Transactions whose commit lies before the resume
/// position were applied before a restart and are skipped whole (invariant 1).
/// Allocation-free per row: the referenced columns' bytes are copied into the batch's pooled arena
/// (<see cref="ChangeBatch"/>), and batches come from a pool the writer returns them to.
/// </remarks>
internal sealed partial class ChangeDecoder
{
    private static readonly byte[] s_heartbeatPrefix = System.Text.Encoding.UTF8.GetBytes(HeartbeatMessage.Prefix);

    private readonly TableRegistry _registry;
    private readonly BatchLimits _limits;
    private readonly ILogger _logger;
    private readonly Lsn _resumeAfter;

    // Per relation OID: the relation the mapping was built for (a new Relation message replaces it),
    // and the mapping, or null for a table that is not registered.
    private readonly Dictionary<uint, (RelationInfo Relation, RelationMapping? Mapping)> _mappings = [];

    private readonly ChangeBatchPool _pool = new();
    private ChangeBatch _batch;
    private readonly Queue<ChangeBatch> _ready = new();
    private bool _inTransaction;
    private bool _skipTransaction;
    private DateTime _commitTime;
    private Lsn _finalLsn;
    // Where the current transaction's changes start in _batch; null once a chunk of it was cut (or outside one).
    private (int Changes, (int Values, int Bytes) Values)? _transactionStart;
    // Set by a failure handed to the writer (ChangeDecoder.SchemaChanges.cs): nothing after it is decoded.
    private bool _failed;

    public ChangeDecoder(TableRegistry registry, BatchLimits limits, Lsn resumeAfter, ILogger logger, Spill.SpillStore? spill = null)
    {
        _spill = spill;
        _registry = registry;
        _limits = limits;
        _resumeAfter = resumeAfter;
        _logger = logger;
        _batch = _pool.Rent();
    }

    /// <summary>The stream was started with <c>binary 'true'</c>: referenced columns' binary values are converted to text.</summary>
    public bool BinaryTuples { get; init; }

    /// <summary>Whether the current batch holds at least one whole transaction.</summary>
    public bool HasCompleteTransactions => _batch.Transactions > 0 || HasMessagesOutsideTransaction;

    /// <summary>True between Begin and Commit.</summary>
    public bool InTransaction => _inTransaction;

    /// <summary>Takes the next batch cut by the limits, if any.</summary>
    public bool TryTakeReady(out ChangeBatch batch)
    {
        if (_ready.Count == 0 && _replay is not null)
            ContinueReplay();
        return _ready.TryDequeue(out batch!);
    }

    /// <summary>Cuts the current batch at its last whole transaction (the input is drained and the linger time is up).</summary>
    public bool TryCutAtIdle(out ChangeBatch batch)
    {
        batch = _batch;
        if ((_batch.Transactions == 0 && !HasMessagesOutsideTransaction) || _inTransaction)
            return false;
        _batch = _pool.Rent();
        return true;
    }

    internal void OnBegin(in BeginMessage message)
    {
        _inTransaction = true;
        // Invariant 1: the persisted position is the end of the last applied transaction, so a
        // transaction whose commit record lies before it was applied already.
        _skipTransaction = _failed || message.FinalLsn < _resumeAfter;
        _skippedByOrigin = false;
        _commitTime = message.CommitTime;
        _finalLsn = message.FinalLsn;
        _transactionStart = (_batch.Count, _batch.ValueMark);
        if (!_skipTransaction && _batch.FirstCommitTime == default)
            _batch.FirstCommitTime = _commitTime;
    }

    internal void OnCommit(in CommitMessage message)
    {
        _inTransaction = false;
        // A transaction skipped for its origin was handled: the position moves past it.
        if (_skipTransaction && !_skippedByOrigin)
            return;
        _batch.EndLsn = message.EndLsn;
        _batch.Transactions++;
        _batch.CommitTimes.Add(_commitTime);
        _batch.EndsTransaction = true;
        if (_batch.Count >= _limits.MaxRows || _batch.Bytes >= _limits.MaxBytes)
            Cut();
    }

    internal void OnRelation(in RelationMessage message)
    {
        // Mapped here, once per Relation message, so a row only looks its mapping up. A registered column missing
        // from the relation is reported by the first row that needs it (the relation may have no rows for us).
        var relation = message.Relation;
        _mappings.Remove(relation.Oid);
        if (!_registry.TryGet(relation.Schema, relation.Name, out var table))
            _mappings[relation.Oid] = (relation, null);
        else if (RelationMapping.TryCreate(relation, table, BinaryTuples, _registry) is { } mapping)
            _mappings[relation.Oid] = (relation, mapping);
    }

    internal void OnInsert(in InsertMessage message, int messageBytes)
    {
        if (_skipTransaction || Map(message.Relation) is not { } mapping)
            return;
        var values = mapping.Read(message.NewRow, _batch);
        RequireId(mapping, values, "inserted");
        mapping.ReadRow(message.NewRow, _batch);
        _batch.Add(new DecodedChange(mapping.Table, ChangeOperation.Insert, values, mapping.Layout));
        Added(messageBytes);
    }

    internal void OnUpdate(in UpdateMessage message, int messageBytes)
    {
        if (_skipTransaction || Map(message.Relation) is not { } mapping)
            return;
        var values = mapping.Read(message.NewRow, _batch);
        // An id stored out of line and left unchanged arrives as 'u'; the server then sends the old key with it.
        if (message.OldRowKind != OldTupleKind.None && _batch.Value(values).Kind == TupleValueKind.UnchangedToast)
            mapping.ReadOldId(message.OldRow, _batch, values);
        RequireId(mapping, values, "updated");
        mapping.ReadRow(message.NewRow, _batch);
        var hasOldRow = false;
        if (message.OldRowKind != OldTupleKind.None)
        {
            var mark = _batch.ValueMark;
            var oldValues = mapping.Read(message.OldRow, _batch);
            var oldId = _batch.Value(oldValues);
            var newId = _batch.Value(values);
            if (oldId.Kind == TupleValueKind.Text && !_batch.Text(oldId).SequenceEqual(_batch.Text(newId)))
            {
                // The id itself changed: the old record is gone and a new one exists. Both go into this batch
                // (the insert's values are in its arena), so the limits are checked after the pair.
                mapping.ReadRow(message.OldRow, _batch, message.OldRowKind == OldTupleKind.Key);
                _batch.Add(new DecodedChange(mapping.Table, ChangeOperation.Delete, oldValues, mapping.Layout));
                _batch.Add(new DecodedChange(mapping.Table, ChangeOperation.Insert, values, mapping.Layout));
                Added(messageBytes);
                return;
            }
            _batch.TruncateValues(mark);
            // A function rule sees the old row too (REPLICA IDENTITY FULL, or the key columns of a changed key).
            hasOldRow = mapping.ReadRow(message.OldRow, _batch, message.OldRowKind == OldTupleKind.Key);
        }
        var operation = mapping.IsSoftDeleted(_batch, values) ? ChangeOperation.Delete : ChangeOperation.Update;
        _batch.Add(new DecodedChange(mapping.Table, operation, values, mapping.Layout, hasOldRow));
        Added(messageBytes);
    }

    internal void OnDelete(in DeleteMessage message, int messageBytes)
    {
        if (_skipTransaction || Map(message.Relation) is not { } mapping)
            return;
        var mark = _batch.ValueMark;
        var values = mapping.Read(message.OldRow, _batch);
        if (_batch.Value(values).Kind != TupleValueKind.Text)
        {
            _batch.TruncateValues(mark);
            LogUnattributableDelete(_logger, mapping.Table.QualifiedName, mapping.Table.IdColumn);
            return;
        }
        mapping.ReadRow(message.OldRow, _batch, message.OldRowKind == OldTupleKind.Key);
        _batch.Add(new DecodedChange(mapping.Table, ChangeOperation.Delete, values, mapping.Layout));
        Added(messageBytes);
    }

    internal void OnMessage(in LogicalDecodingMessage message)
    {
        if (MessageHandlers is { } handlers && handlers.Find(message.Prefix) is var handler and >= 0)
        {
            AddMessage(handlers, handler, message);
            return;
        }
        // A heartbeat outside any transaction, with nothing pending: everything before it is
        // handled, so its position may be persisted and confirmed (an empty batch).
        if (_failed || message.Transactional || _inTransaction || !message.Prefix.SequenceEqual(s_heartbeatPrefix))
            return;
        if (_batch.Count > 0 || _batch.Transactions > 0 || message.Lsn < _resumeAfter)
            return;
        _batch.EndLsn = message.Lsn;
        _batch.EndsTransaction = true;
        Cut();
    }

    internal void OnTruncate(in TruncateMessage message)
    {
        if (_skipTransaction)
            return;
        // Invariant 3: the TRUNCATE becomes a batch of its own, cut from the changes before it and after it.
        ChangeBatch? truncate = null;
        for (var i = 0; i < message.RelationCount; i++)
        {
            // Only the edges are used, not the columns: a registration whose columns changed still truncates.
            var relation = message.Relation(i);
            if (!_registry.TryGet(relation.Schema, relation.Name, out var table))
                continue;
            // Inside a streamed or prepared transaction the TRUNCATE is spilled with the changes (no cut: nothing is sent yet).
            truncate ??= _redirected ? _batch : StartTruncate(message.Options);
            truncate.TruncateOptions = message.Options;
            if (!truncate.TruncatedTables.Contains(table))
                truncate.TruncatedTables.Add(table);
        }
        if (truncate is not null && !_redirected)
        {
            truncate.EndsTransaction = false;
            Cut();
        }
    }

    /// <summary>Cuts the changes decoded so far into a chunk of this transaction (if any); the fresh batch carries the TRUNCATE.</summary>
    private ChangeBatch StartTruncate(TruncateOptions options)
    {
        if (_batch.Count > 0 || _batch.Transactions > 0)
        {
            _batch.EndsTransaction = false;
            Cut();
        }
        _batch.TruncateOptions = options;
        return _batch;
    }

    /// <summary>Accounts for the change(s) just added and cuts the batch when it is full.</summary>
    private void Added(int messageBytes)
    {
        if (_redirected)
            return;
        _batch.Bytes += messageBytes;
        // A transaction larger than the limits goes out in chunks; the writer holds one database
        // transaction open across them, so memory stays bounded and the result is still atomic.
        if (_batch.Count >= _limits.MaxRows || _batch.Bytes >= _limits.MaxBytes)
        {
            _batch.EndsTransaction = false;
            Cut();
        }
    }

    private void Cut()
    {
        _ready.Enqueue(_batch);
        // A chunk's successor continues the same transaction.
        _transactionStart = null;
        _batch = _pool.Rent();
        _batch.FirstCommitTime = _inTransaction ? _commitTime : default;
    }

    private RelationMapping? Map(RelationInfo relation)
    {
        if (_mappings.TryGetValue(relation.Oid, out var known) && ReferenceEquals(known.Relation, relation))
            return known.Mapping;
        RelationMapping? mapping = null;
        if (_registry.TryGet(relation.Schema, relation.Name, out var table) && (mapping = RelationMapping.TryCreate(relation, table, BinaryTuples, _registry)) is null)
        {
            FailMissingColumns(relation, table);
            return null;
        }
        _mappings[relation.Oid] = (relation, mapping);
        return mapping;
    }

    private void RequireId(RelationMapping mapping, int values, string verb)
    {
        if (_batch.Value(values).Kind != TupleValueKind.Text)
        {
            throw new WalPipelineException(
                $"A row {verb} in {mapping.Table} has no value in its id column '{mapping.Table.IdColumn}'. "
                + "The id column must be NOT NULL (and not TOASTed); fix the table or register the right IdColumn.");
        }
    }

    [LoggerMessage(EventId = Diagnostics.EventIds.UnattributableDelete, Level = LogLevel.Warning,
        Message = "A DELETE on {Table} carries no value for its id column {IdColumn} and cannot be attributed to a record; it is skipped. "
            + "The table's REPLICA IDENTITY must include the id column (ALTER TABLE ... REPLICA IDENTITY FULL, or make the id the primary key).")]
    private static partial void LogUnattributableDelete(ILogger logger, string table, string idColumn);

    /// <summary>Where a registered table's referenced columns sit in its relation's tuples.</summary>
    private sealed partial class RelationMapping
    {
        private readonly int[] _positions;
        private readonly int _softDeleteIndex;
        // Binary tuple mode: per referenced column, how its binary values become text; null in text mode.
        private readonly BinaryColumnFormat[]? _formats;

        private RelationMapping(RelationInfo relation, TableRegistration table, int[] positions, BinaryColumnFormat[]? formats, bool fullRow)
        {
            Relation = relation;
            Table = table;
            _positions = positions;
            _formats = formats;
            Layout = new RowLayout(table, relation.Columns.Select(c => c.Name).ToArray(), relation.Columns.Select(c => c.TypeOid).ToArray(), positions, fullRow);
            _softDeleteIndex = table.SoftDeleteColumn is { } softDelete ? table.ReferencedColumnIndex(softDelete) : -1;
        }

        public RelationInfo Relation { get; }

        public TableRegistration Table { get; }

        /// <summary>The names and types of the relation's columns, shared by its changes.</summary>
        public RowLayout Layout { get; }

        /// <summary>The mapping, or null when a referenced column is not in the relation.</summary>
        /// <exception cref="WalPipelineException">Binary tuple mode, and a referenced column's type has no conversion to text.</exception>
        public static RelationMapping? TryCreate(RelationInfo relation, TableRegistration table, bool binary, TableRegistry registry)
        {
            var columns = table.ReferencedColumns;
            var positions = new int[columns.Count];
            for (var i = 0; i < columns.Count; i++)
            {
                positions[i] = FindColumn(relation, columns[i]);
                if (positions[i] < 0)
                    return null;
            }
            return new RelationMapping(relation, table, positions, binary ? BinaryFormats(relation, table, positions) : null, table.DecodeAllColumns || registry.BucketFunctionOf(table) is not null);
        }

        /// <summary>Appends the referenced columns' values to <paramref name="batch"/>; returns the index of the first.</summary>
        public int Read(TupleData row, ChangeBatch batch)
        {
            var first = batch.ValueMark.Values;
            for (var i = 0; i < _positions.Length; i++)
            {
                var value = row[_positions[i]];
                switch (value.Kind)
                {
                    case TupleValueKind.Text:
                        // Checked here, where the column is known, so the writer's strings cannot fail.
                        if (!Utf8.IsValid(value.Data))
                            throw new WalPipelineException($"Column '{Relation.Columns[_positions[i]].Name}' of {Table} arrived with invalid UTF-8; the database encoding must be UTF8.");
                        batch.AddText(value.Data);
                        break;
                    case TupleValueKind.Null or TupleValueKind.UnchangedToast:
                        batch.AddEmpty(value.Kind);
                        break;
                    case TupleValueKind.Binary when _formats is not null:
                        if (!batch.AddBinary(_formats[i], value.Data))
                            ThrowBadBinary(i, value.Data.Length);
                        break;
                    default:
                        throw new WalPipelineException($"Column '{Relation.Columns[_positions[i]].Name}' of {Table} arrived in binary format, which this pipeline does not request.");
                }
            }
            return first;
        }

        /// <summary>Replaces the id of the change at <paramref name="values"/> with the old row's, when that has it as text.</summary>
        public void ReadOldId(TupleData oldRow, ChangeBatch batch, int values)
        {
            var id = oldRow[_positions[0]];
            if (id.Kind != TupleValueKind.Text)
                return;
            if (!Utf8.IsValid(id.Data))
                throw new WalPipelineException($"Column '{Relation.Columns[_positions[0]].Name}' of {Table} arrived with invalid UTF-8; the database encoding must be UTF8.");
            batch.SetText(values, id.Data);
        }

        /// <summary>
        /// For a table with a function rule: appends every column's value of <paramref name="row"/> (after the referenced ones)
        /// and returns true; otherwise adds nothing and returns false, so other tables pay nothing. Of a key-only old row
        /// (<paramref name="keyOnly"/>), the columns outside the replica identity are stored as not sent (as unchanged TOAST
        /// values), not as the NULLs the server puts there, so nothing takes them for the row's values.
        /// </summary>
        public bool ReadRow(TupleData row, ChangeBatch batch, bool keyOnly = false)
        {
            if (!Layout.FullRow)
                return false;
            var index = 0;
            foreach (var value in row)
            {
                if (keyOnly && !Relation.Columns[index].IsKey)
                {
                    batch.AddEmpty(TupleValueKind.UnchangedToast);
                    index++;
                    continue;
                }
                switch (value.Kind)
                {
                    case TupleValueKind.Text:
                        if (!Utf8.IsValid(value.Data))
                            throw new WalPipelineException($"Column '{Relation.Columns[index].Name}' of {Table} arrived with invalid UTF-8; the database encoding must be UTF8.");
                        batch.AddText(value.Data);
                        break;
                    case TupleValueKind.Null or TupleValueKind.UnchangedToast:
                        batch.AddEmpty(value.Kind);
                        break;
                    default:
                        throw new WalPipelineException($"Column '{Relation.Columns[index].Name}' of {Table} arrived in binary format, which this pipeline does not request.");
                }
                index++;
            }
            return true;
        }

        // An unchanged TOAST value ('u') is never NULL: pgoutput sends it only for a value stored out of line. So the
        // column was and stays non-null, the record was and stays soft-deleted, and the change is a delete — exactly
        // what the same update makes of a soft-deleted row whose column is sent in full. No lookup, no guess.
        public bool IsSoftDeleted(ChangeBatch batch, int values)
            => _softDeleteIndex >= 0 && batch.Value(values + _softDeleteIndex).Kind != TupleValueKind.Null;

        public static int FindColumn(RelationInfo relation, string name)
        {
            for (var i = 0; i < relation.Columns.Length; i++)
            {
                if (relation.Columns[i].Name == name)
                    return i;
            }
            return -1;
        }
    }
}

/// <summary>When the decoder cuts a batch.</summary>
internal readonly record struct BatchLimits(int MaxRows, long MaxBytes);
