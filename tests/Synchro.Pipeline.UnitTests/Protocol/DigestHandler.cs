using Synchro.Pipeline.Protocol;
using Synchro.Pipeline.Protocol.Messages;

namespace Synchro.Pipeline.Tests.Protocol;

/// <summary>
/// Folds every decoded field of every message into one digest without allocating, so a stream
/// parsed many ways (split at every index, ...) can be compared cheaply within one test run.
/// </summary>
internal struct DigestHandler : IPgOutputHandler
{
    private HashCode _hash;

    public readonly int Digest => _hash.ToHashCode();

    public int Messages { get; private set; }

    public DigestHandler()
    {
    }

    private void Add(ulong value) => _hash.Add(value);

    private void Add(ReadOnlySpan<byte> bytes)
    {
        _hash.Add(bytes.Length);
        _hash.AddBytes(bytes);
    }

    // Also checks that indexed access (the offset table) agrees with the sequential walk.
    private void Add(TupleData row)
    {
        Add((ulong)row.Count);
        var index = 0;
        foreach (var value in row)
        {
            var indexed = row[index++];
            if (indexed.Kind != value.Kind || !indexed.Data.SequenceEqual(value.Data))
                throw new InvalidOperationException($"Column {index} differs between indexed access and enumeration.");
            Add((ulong)value.Kind);
            Add(value.Data);
        }
        if (index != row.Count)
            throw new InvalidOperationException($"Enumerated {index} columns of {row.Count}.");
    }

    private void Kind(char kind)
    {
        Messages++;
        Add(kind);
    }

    public void OnBegin(in BeginMessage m) { Kind('B'); Add(m.FinalLsn.Value); Add((ulong)m.CommitTimestamp); Add(m.Xid); }

    public void OnCommit(in CommitMessage m) { Kind('C'); Add(m.Flags); Add(m.CommitLsn.Value); Add(m.EndLsn.Value); Add((ulong)m.CommitTimestamp); }

    public void OnOrigin(in OriginMessage m) { Kind('O'); Add(m.OriginCommitLsn.Value); Add(m.Name); }

    public void OnRelation(in RelationMessage m)
    {
        Kind('R');
        Add(m.Xid);
        Add(m.Relation.Oid);
        Add((ulong)m.Relation.ReplicaIdentity);
        foreach (var column in m.Relation.Columns)
        {
            Add((ulong)column.Name.Length);
            Add(column.TypeOid);
            Add((ulong)column.TypeModifier);
            Add(column.IsKey ? 1UL : 0UL);
        }
    }

    public void OnType(in TypeMessage m) { Kind('Y'); Add(m.Xid); Add(m.TypeOid); Add(m.Schema); Add(m.Name); }

    public void OnInsert(in InsertMessage m) { Kind('I'); Add(m.Xid); Add(m.Relation.Oid); Add(m.NewRow); }

    public void OnUpdate(in UpdateMessage m) { Kind('U'); Add(m.Xid); Add(m.Relation.Oid); Add((ulong)m.OldRowKind); Add(m.OldRow); Add(m.NewRow); }

    public void OnDelete(in DeleteMessage m) { Kind('D'); Add(m.Xid); Add(m.Relation.Oid); Add((ulong)m.OldRowKind); Add(m.OldRow); }

    public void OnTruncate(in TruncateMessage m)
    {
        Kind('T');
        Add(m.Xid);
        Add((ulong)m.Options);
        for (var i = 0; i < m.RelationCount; i++)
            Add(m.Relation(i).Oid);
    }

    public void OnMessage(in LogicalDecodingMessage m) { Kind('M'); Add(m.Xid); Add(m.Transactional ? 1UL : 0UL); Add(m.Lsn.Value); Add(m.Prefix); Add(m.Content); }

    public void OnStreamStart(in StreamStartMessage m) { Kind('S'); Add(m.Xid); Add(m.IsFirstSegment ? 1UL : 0UL); }

    public void OnStreamStop() => Kind('E');

    public void OnStreamCommit(in CommitMessage m) { Kind('c'); Add(m.Xid); Add(m.CommitLsn.Value); Add(m.EndLsn.Value); Add((ulong)m.CommitTimestamp); }

    public void OnStreamAbort(in StreamAbortMessage m) { Kind('A'); Add(m.Xid); Add(m.SubXid); Add(m.AbortLsn.Value); Add((ulong)m.AbortTimestamp); }

    public void OnBeginPrepare(in PrepareMessage m) { Kind('b'); Prepare(m); }

    public void OnPrepare(in PrepareMessage m) { Kind('P'); Prepare(m); }

    public void OnStreamPrepare(in PrepareMessage m) { Kind('p'); Prepare(m); }

    public void OnCommitPrepared(in CommitPreparedMessage m) { Kind('K'); Add(m.Flags); Add(m.CommitLsn.Value); Add(m.EndLsn.Value); Add((ulong)m.CommitTimestamp); Add(m.Xid); Add(m.Gid); }

    public void OnRollbackPrepared(in RollbackPreparedMessage m)
    {
        Kind('r');
        Add(m.Flags);
        Add(m.PrepareEndLsn.Value);
        Add(m.RollbackEndLsn.Value);
        Add((ulong)m.PrepareTimestamp);
        Add((ulong)m.RollbackTimestamp);
        Add(m.Xid);
        Add(m.Gid);
    }

    private void Prepare(in PrepareMessage m) { Add(m.Flags); Add(m.PrepareLsn.Value); Add(m.EndLsn.Value); Add((ulong)m.PrepareTimestamp); Add(m.Xid); Add(m.Gid); }
}
