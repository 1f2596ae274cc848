namespace Synchro.Pipeline.Protocol.Messages;

/// <summary>Delete (<c>D</c>).</summary>
internal readonly ref struct DeleteMessage(uint xid, RelationInfo relation, OldTupleKind oldRowKind, TupleData oldRow)
{
    public uint Xid { get; } = xid;

    public RelationInfo Relation { get; } = relation;

    /// <summary><see cref="OldTupleKind.Key"/> or <see cref="OldTupleKind.Full"/>; a delete always carries one.</summary>
    public OldTupleKind OldRowKind { get; } = oldRowKind;

    public TupleData OldRow { get; } = oldRow;
}
