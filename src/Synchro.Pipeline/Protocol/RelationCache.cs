using System.Diagnostics.CodeAnalysis;

namespace Synchro.Pipeline.Protocol;

/// <summary>Relations described by the stream so far, by OID.</summary>
/// <remarks>Owned by the single parser that fills it; not thread-safe.</remarks>
internal sealed class RelationCache
{
    private readonly Dictionary<uint, RelationInfo> _byOid = [];

    /// <summary>Adds or replaces (a schema change mid-stream) the relation for its OID.</summary>
    public void Set(RelationInfo relation) => _byOid[relation.Oid] = relation;

    public bool TryGet(uint oid, [MaybeNullWhen(false)] out RelationInfo relation) => _byOid.TryGetValue(oid, out relation);
}
