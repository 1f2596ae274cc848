namespace Synchro.Pipeline.Protocol.Messages;

/// <summary>Update (<c>U</c>).</summary>
internal readonly ref struct UpdateMessage(uint xid, RelationInfo relation, OldTupleKind oldRowKind, TupleData oldRow, TupleData newRow)
{
    public uint Xid { get; } = xid;

    public RelationInfo Relation { get; } = relation;

    public OldTupleKind OldRowKind { get; } = oldRowKind;

    /// <summary>Empty (no columns) when <see cref="OldRowKind"/> is <see cref="OldTupleKind.None"/>.</summary>
    public TupleData OldRow { get; } = oldRow;

    public TupleData NewRow { get; } = newRow;
}
