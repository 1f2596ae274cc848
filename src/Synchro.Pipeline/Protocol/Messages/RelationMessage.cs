namespace Synchro.Pipeline.Protocol.Messages;

/// <summary>Relation (<c>R</c>): the columns of a table, sent before its first row and after each schema change.</summary>
internal readonly struct RelationMessage(uint xid, RelationInfo relation)
{
    /// <summary>The streamed transaction's id inside a stream block, else 0.</summary>
    public uint Xid { get; } = xid;

    /// <summary>The cache entry this message created or replaced.</summary>
    public RelationInfo Relation { get; } = relation;
}
