using System.Text;
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

    private ChangeBatch _batch = new();
    private readonly Queue<ChangeBatch> _ready = new();
    private bool _inTransaction;
    private bool _skipTransaction;
    private DateTime _commitTime;

    public ChangeDecoder(TableRegistry registry, BatchLimits limits, Lsn resumeAfter, ILogger logger)
    {
        _registry = registry;
        _limits = limits;
        _resumeAfter = resumeAfter;
        _logger = logger;
    }

    /// <summary>Whether the current batch holds at least one whole transaction.</summary>
    public bool HasCompleteTransactions => _batch.Transactions > 0;

    /// <summary>True between Begin and Commit.</summary>
    public bool InTransaction => _inTransaction;

    /// <summary>Takes the next batch cut by the limits, if any.</summary>
    public bool TryTakeReady(out ChangeBatch batch) => _ready.TryDequeue(out batch!);

    /// <summary>Cuts the current batch at its last whole transaction (the input is drained and the linger time is up).</summary>
    public bool TryCutAtIdle(out ChangeBatch batch)
    {
        batch = _batch;
        if (_batch.Transactions == 0 || _inTransaction)
            return false;
        _batch = new ChangeBatch();
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
        if (_batch.Changes.Count >= _limits.MaxRows || _batch.Bytes >= _limits.MaxBytes)
            Cut();
    }

    internal void OnRelation(in RelationMessage message) => _mappings.Remove(message.Relation.Oid);

    internal void OnInsert(in InsertMessage message, int messageBytes)
    {
        if (_skipTransaction || Map(message.Relation) is not { } mapping)
            return;
        var values = mapping.Read(message.NewRow);
        Add(new DecodedChange(mapping.Table, RecordId(mapping, values, "inserted"), ChangeOperation.Insert, values), messageBytes);
    }

    internal void OnUpdate(in UpdateMessage message, int messageBytes)
    {
        if (_skipTransaction || Map(message.Relation) is not { } mapping)
            return;
        var values = mapping.Read(message.NewRow);
        var recordId = RecordId(mapping, values, "updated");
        if (message.OldRowKind != OldTupleKind.None)
        {
            // The id itself changed: the old record is gone and a new one exists.
            var oldValues = mapping.Read(message.OldRow);
            if (oldValues[0] is { } oldId && !ReferenceEquals(oldId, DecodedChange.UnchangedToast) && oldId != recordId)
            {
                Add(new DecodedChange(mapping.Table, oldId, ChangeOperation.Delete, oldValues), messageBytes);
                Add(new DecodedChange(mapping.Table, recordId, ChangeOperation.Insert, values), 0);
                return;
            }
        }
        var operation = mapping.IsSoftDeleted(values) ? ChangeOperation.Delete : ChangeOperation.Update;
        Add(new DecodedChange(mapping.Table, recordId, operation, values), messageBytes);
    }

    internal void OnDelete(in DeleteMessage message, int messageBytes)
    {
        if (_skipTransaction || Map(message.Relation) is not { } mapping)
            return;
        var values = mapping.Read(message.OldRow);
        if (values[0] is null)
        {
            LogUnattributableDelete(_logger, mapping.Table.QualifiedName, mapping.Table.IdColumn);
            return;
        }
        Add(new DecodedChange(mapping.Table, values[0]!, ChangeOperation.Delete, values), messageBytes);
    }

    internal void OnMessage(in LogicalDecodingMessage message)
    {
        // A heartbeat outside any transaction, with nothing pending: everything before it is
        // handled, so its position may be persisted and confirmed (an empty batch).
        if (message.Transactional || _inTransaction || !message.Prefix.SequenceEqual(s_heartbeatPrefix))
            return;
        if (_batch.Changes.Count > 0 || _batch.Transactions > 0 || message.Lsn < _resumeAfter)
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

    private void Add(DecodedChange change, int messageBytes)
    {
        _batch.Changes.Add(change);
        _batch.Bytes += messageBytes;
        // A transaction larger than the limits goes out in chunks; the writer holds one database
        // transaction open across them, so memory stays bounded and the result is still atomic.
        if (_batch.Changes.Count >= _limits.MaxRows || _batch.Bytes >= _limits.MaxBytes)
        {
            _batch.EndsTransaction = false;
            Cut();
        }
    }

    private void Cut()
    {
        _ready.Enqueue(_batch);
        // A chunk's successor continues the same transaction.
        _batch = new ChangeBatch { FirstCommitTime = _inTransaction ? _commitTime : default };
    }

    private RelationMapping? Map(RelationInfo relation)
    {
        if (_mappings.TryGetValue(relation.Oid, out var known) && ReferenceEquals(known.Relation, relation))
            return known.Mapping;
        var mapping = _registry.TryGet(relation.Schema, relation.Name, out var table) ? RelationMapping.Create(relation, table) : null;
        _mappings[relation.Oid] = (relation, mapping);
        return mapping;
    }

    private static string RecordId(RelationMapping mapping, string?[] values, string verb)
        => values[0] is { } id && !ReferenceEquals(id, DecodedChange.UnchangedToast)
            ? id
            : throw new WalPipelineException(
                $"A row {verb} in {mapping.Table} has no value in its id column '{mapping.Table.IdColumn}'. "
                + "The id column must be NOT NULL (and not TOASTed); fix the table or register the right IdColumn.");

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
        private static readonly UTF8Encoding s_utf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

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
            var columns = table.ReferencedColumns;
            var positions = new int[columns.Count];
            for (var i = 0; i < columns.Count; i++)
            {
                positions[i] = FindColumn(relation, columns[i]);
                if (positions[i] < 0)
                {
                    throw new WalPipelineException(
                        $"Registered column '{columns[i]}' of table {table} is not in the replication stream: it was dropped or renamed, "
                        + "or the publication's column list leaves it out. Fix the registration or the table, then restart the pipeline.");
                }
            }
            return new RelationMapping(relation, table, positions);
        }

        /// <summary>The referenced columns' text values.</summary>
        public string?[] Read(TupleData row)
        {
            var values = new string?[_positions.Length];
            for (var i = 0; i < _positions.Length; i++)
            {
                var value = row[_positions[i]];
                values[i] = value.Kind switch
                {
                    TupleValueKind.Text => s_utf8.GetString(value.Data),
                    TupleValueKind.Null => null,
                    TupleValueKind.UnchangedToast => DecodedChange.UnchangedToast,
                    _ => throw new WalPipelineException($"Column '{Relation.Columns[_positions[i]].Name}' of {Table} arrived in binary format, which this pipeline does not request."),
                };
            }
            return values;
        }

        public bool IsSoftDeleted(string?[] values)
            => _softDeleteIndex >= 0 && values[_softDeleteIndex] is { } value && !ReferenceEquals(value, DecodedChange.UnchangedToast);

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
