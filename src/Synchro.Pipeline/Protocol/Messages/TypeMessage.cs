namespace Synchro.Pipeline.Protocol.Messages;

/// <summary>Type (<c>Y</c>): names a non-built-in type used by a relation's columns.</summary>
internal readonly ref struct TypeMessage(uint xid, uint typeOid, ReadOnlySpan<byte> schema, ReadOnlySpan<byte> name)
{
    public uint Xid { get; } = xid;

    public uint TypeOid { get; } = typeOid;

    public ReadOnlySpan<byte> Schema { get; } = schema;

    public ReadOnlySpan<byte> Name { get; } = name;
}
