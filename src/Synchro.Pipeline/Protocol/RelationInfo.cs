using System.Collections.Immutable;

namespace Synchro.Pipeline.Protocol;

/// <summary>How a table identifies the old row of an UPDATE or DELETE (<c>pg_class.relreplident</c>).</summary>
internal enum ReplicaIdentity : byte
{
    /// <summary>The primary key columns (<c>d</c>).</summary>
    Default = (byte)'d',

    /// <summary>No old row at all (<c>n</c>): deletes cannot be attributed.</summary>
    Nothing = (byte)'n',

    /// <summary>The whole old row (<c>f</c>).</summary>
    Full = (byte)'f',

    /// <summary>The columns of a chosen unique index (<c>i</c>).</summary>
    Index = (byte)'i',
}

/// <summary>One column of a relation as the Relation message describes it.</summary>
internal sealed record RelationColumn(string Name, uint TypeOid, int TypeModifier, bool IsKey);

/// <summary>
/// A table as described by the stream's latest Relation message for its OID.
/// </summary>
/// <remarks>Immutable: a schema change arrives as a new Relation message and replaces the whole entry.</remarks>
internal sealed class RelationInfo
{
    public RelationInfo(uint oid, string schema, string name, ReplicaIdentity replicaIdentity, ImmutableArray<RelationColumn> columns)
    {
        Oid = oid;
        Schema = schema;
        Name = name;
        ReplicaIdentity = replicaIdentity;
        Columns = columns;
    }

    public uint Oid { get; }

    public string Schema { get; }

    public string Name { get; }

    public ReplicaIdentity ReplicaIdentity { get; }

    /// <summary>Published columns in tuple order; every tuple of this relation has exactly this many.</summary>
    public ImmutableArray<RelationColumn> Columns { get; }

    public override string ToString() => $"{Schema}.{Name}";
}
