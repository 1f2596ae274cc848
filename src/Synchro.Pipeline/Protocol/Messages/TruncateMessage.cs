using System.Buffers.Binary;

namespace Synchro.Pipeline.Protocol.Messages;

/// <summary>TRUNCATE options (<c>Truncate</c> message flags).</summary>
[Flags]
internal enum TruncateOptions : byte
{
    None = 0,
    Cascade = 1,
    RestartIdentity = 2,
}

/// <summary>Truncate (<c>T</c>): one or more tables emptied in one statement.</summary>
internal readonly ref struct TruncateMessage
{
    private readonly ReadOnlySpan<byte> _oids;
    private readonly RelationCache _relations;

    // Invariant: oids are big-endian relation OIDs, each already known to relations.
    internal TruncateMessage(uint xid, TruncateOptions options, ReadOnlySpan<byte> oids, RelationCache relations)
    {
        Xid = xid;
        Options = options;
        _oids = oids;
        _relations = relations;
    }

    public uint Xid { get; }

    public TruncateOptions Options { get; }

    public int RelationCount => _oids.Length / sizeof(uint);

    public uint RelationOid(int index) => BinaryPrimitives.ReadUInt32BigEndian(_oids.Slice(index * sizeof(uint), sizeof(uint)));

    // Invariant: the parser checked every OID against the cache before handing this out.
    public RelationInfo Relation(int index) => _relations.TryGet(RelationOid(index), out var relation)
        ? relation
        : throw new InvalidOperationException("Relation cache changed while a Truncate message was being handled.");
}
