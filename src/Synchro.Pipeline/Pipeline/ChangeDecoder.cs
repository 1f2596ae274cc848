using System.Text.Unicode;
using Microsoft.Extensions.Logging;
using Synchro.Pipeline.Changelog;
using Synchro.Pipeline.Protocol;
using Synchro.Pipeline.Protocol.Messages;
using Synchro.Pipeline.Registry;

namespace Synchro.Pipeline.Pipeline;

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
    private static readonly byte[] s_heartbeatPrefix = System.Text.Encoding.UTF8.GetBytes(LsnCommitter.HeartbeatPrefix);

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

    public ChangeDecoder(TableRegistry registry, BatchLimits limits, Lsn resumeAfter, ILogger logger, Spill.SpillStore? spill = null)
    {
        _spill = spill;
        _registry = registry;
        _limits = limits;
        _resumeAfter = resumeAfter;
        _logger = logger;
        _batch = _pool.Rent();
    }

    /// <summary>Whether the current batch holds at least one whole transaction.</summary>
    public bool HasCompleteTransactions => _batch.Transactions > 0;

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
        if (_batch.Transactions == 0 || _inTransaction)
            return false;
        _batch = _pool.Rent();
        return true;
    }

    internal void OnBegin(in BeginMessage message)
    {
        _inTransaction = true;
        // Invariant 1: the persisted position is the end of the last applied transaction, so a
        // transaction whose commit record lies before it was applied already.
        _skipTransaction = message.FinalLsn < _resumeAfter;
        _commitTime = message.CommitTime;
        if (!_skipTransaction && _batch.FirstCommitTime == default)
            _batch.FirstCommitTime = _commitTime;
    }

    internal void OnCommit(in CommitMessage message)
    {
        _inTransaction = false;
        if (_skipTransaction)
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
        else if (RelationMapping.TryCreate(relation, table) is { } mapping)
            _mappings[relation.Oid] = (relation, mapping);
    }

    internal void OnInsert(in InsertMessage message, int messageBytes)
    {
        if (_skipTransaction || Map(message.Relation) is not { } mapping)
            return;
        var values = mapping.Read(message.NewRow, _batch);
        RequireId(mapping, values, "inserted");
        _batch.Add(new DecodedChange(mapping.Table, ChangeOperation.Insert, values));
        Added(messageBytes);
    }

    internal void OnUpdate(in UpdateMessage message, int messageBytes)
    {
        if (_skipTransaction || Map(message.Relation) is not { } mapping)
            return;
        var values = mapping.Read(message.NewRow, _batch);
        RequireId(mapping, values, "updated");
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
                _batch.Add(new DecodedChange(mapping.Table, ChangeOperation.Delete, oldValues));
                _batch.Add(new DecodedChange(mapping.Table, ChangeOperation.Insert, values));
                Added(messageBytes);
                return;
            }
            _batch.TruncateValues(mark);
        }
        var operation = mapping.IsSoftDeleted(_batch, values) ? ChangeOperation.Delete : ChangeOperation.Update;
        _batch.Add(new DecodedChange(mapping.Table, operation, values));
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
        _batch.Add(new DecodedChange(mapping.Table, ChangeOperation.Delete, values));
        Added(messageBytes);
    }

    internal void OnMessage(in LogicalDecodingMessage message)
    {
        // A heartbeat outside any transaction, with nothing pending: everything before it is
        // handled, so its position may be persisted and confirmed (an empty batch).
        if (message.Transactional || _inTransaction || !message.Prefix.SequenceEqual(s_heartbeatPrefix))
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
        for (var i = 0; i < message.RelationCount; i++)
        {
            if (Map(message.Relation(i)) is { } mapping)
                LogTruncateNotApplied(_logger, mapping.Table.QualifiedName);
        }
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
        _batch = _pool.Rent();
        _batch.FirstCommitTime = _inTransaction ? _commitTime : default;
    }

    private RelationMapping? Map(RelationInfo relation)
    {
        if (_mappings.TryGetValue(relation.Oid, out var known) && ReferenceEquals(known.Relation, relation))
            return known.Mapping;
        var mapping = _registry.TryGet(relation.Schema, relation.Name, out var table) ? RelationMapping.Create(relation, table) : null;
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

    [LoggerMessage(EventId = 2001, Level = LogLevel.Warning,
        Message = "A DELETE on {Table} carries no value for its id column {IdColumn} and cannot be attributed to a record; it is skipped. "
            + "The table's REPLICA IDENTITY must include the id column (ALTER TABLE ... REPLICA IDENTITY FULL, or make the id the primary key).")]
    private static partial void LogUnattributableDelete(ILogger logger, string table, string idColumn);

    [LoggerMessage(EventId = 2002, Level = LogLevel.Error,
        Message = "TRUNCATE of registered table {Table} is not reflected in the changelog by this version; clients keep the truncated rows until they resync.")]
    private static partial void LogTruncateNotApplied(ILogger logger, string table);

    /// <summary>Where a registered table's referenced columns sit in its relation's tuples.</summary>
    private sealed class RelationMapping
    {
        private readonly int[] _positions;
        private readonly int _softDeleteIndex;

        private RelationMapping(RelationInfo relation, TableRegistration table, int[] positions)
        {
            Relation = relation;
            Table = table;
            _positions = positions;
            _softDeleteIndex = table.SoftDeleteColumn is { } softDelete ? table.ReferencedColumnIndex(softDelete) : -1;
        }

        public RelationInfo Relation { get; }

        public TableRegistration Table { get; }

        public static RelationMapping Create(RelationInfo relation, TableRegistration table)
        {
            if (TryCreate(relation, table) is { } mapping)
                return mapping;
            var missing = table.ReferencedColumns.First(c => FindColumn(relation, c) < 0);
            throw new WalPipelineException(
                $"Registered column '{missing}' of table {table} is not in the replication stream: it was dropped or renamed, "
                + "or the publication's column list leaves it out. Fix the registration or the table, then restart the pipeline.");
        }

        /// <summary>The mapping, or null when a referenced column is not in the relation.</summary>
        public static RelationMapping? TryCreate(RelationInfo relation, TableRegistration table)
        {
            var columns = table.ReferencedColumns;
            var positions = new int[columns.Count];
            for (var i = 0; i < columns.Count; i++)
            {
                positions[i] = FindColumn(relation, columns[i]);
                if (positions[i] < 0)
                    return null;
            }
            return new RelationMapping(relation, table, positions);
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
                    default:
                        throw new WalPipelineException($"Column '{Relation.Columns[_positions[i]].Name}' of {Table} arrived in binary format, which this pipeline does not request.");
                }
            }
            return first;
        }

        public bool IsSoftDeleted(ChangeBatch batch, int values)
            => _softDeleteIndex >= 0 && batch.Value(values + _softDeleteIndex).Kind == TupleValueKind.Text;

        private static int FindColumn(RelationInfo relation, string name)
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
