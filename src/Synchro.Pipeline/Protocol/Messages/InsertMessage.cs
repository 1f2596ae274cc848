namespace Synchro.Pipeline.Protocol.Messages;

/// <summary>Insert (<c>I</c>).</summary>
internal readonly ref struct InsertMessage(uint xid, RelationInfo relation, TupleData newRow)
{
    public uint Xid { get; } = xid;

    public RelationInfo Relation { get; } = relation;

    public TupleData NewRow { get; } = newRow;
}
