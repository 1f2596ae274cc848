using Synchro.Pipeline.Decoding.Items;
using Synchro.Pipeline.Partitions;
using Synchro.Pipeline.Protocol;
using Synchro.Pipeline.Registry;

namespace Synchro.Pipeline.Decoding;

// Partitioned tables: with publish_via_partition_root = false the server sends each partition as a relation of its own,
// which counts for the registered table it belongs to (RelationResolver, asked once per Relation message).
internal sealed partial class ChangeDecoder
{
    // Per relation OID: what it counts for, set by ResolveRelationsAsync; only used with a resolver.
    private readonly Dictionary<uint, RelationRoute> _routes = [];
    // Relation messages parsed and not resolved yet.
    private readonly List<RelationInfo> _unresolved = [];

    /// <summary>Resolves relations to registered tables through the catalog; null: by name only (no partitions).</summary>
    public RelationResolver? Relations { get; init; }

    /// <summary>A Relation message waits for <see cref="ResolveRelationsAsync"/>, which must run before the next message is parsed.</summary>
    public bool HasUnresolvedRelations => _unresolved.Count > 0;

    public async ValueTask ResolveRelationsAsync(CancellationToken cancellationToken)
    {
        foreach (var relation in _unresolved)
        {
            var route = await Relations!.ResolveAsync(relation, cancellationToken).ConfigureAwait(false);
            _routes[relation.Oid] = route;
            MapRelation(relation, route.Table);
        }
        _unresolved.Clear();
    }

    /// <summary>The registered table whose changes <paramref name="relation"/>'s are, if any.</summary>
    private TableRegistration? TableOf(RelationInfo relation)
    {
        if (Relations is not null && _routes.TryGetValue(relation.Oid, out var route))
            return route.Table;
        return _registry.TryGet(relation.Schema, relation.Name, out var table) ? table : null;
    }

    /// <summary>A whole table truncated makes its partitions' TRUNCATEs in the same message redundant.</summary>
    private static void AddTruncated(List<TruncatedTable> tables, TruncatedTable truncated)
    {
        foreach (var other in tables)
        {
            if (ReferenceEquals(other.Table, truncated.Table) && (other.Partition is null || other.Partition == truncated.Partition))
                return;
        }
        if (truncated.Partition is null)
            tables.RemoveAll(t => ReferenceEquals(t.Table, truncated.Table));
        tables.Add(truncated);
    }

    private void FailUnattributableTruncate(TableRegistration table, PartitionFilter partition)
        => FailBeforeTransaction(new WalPipelineException(
            $"The transaction committed at {_finalLsn} truncates partition {partition.Name} of {table}, and the pipeline cannot tell which "
            + $"records the partition held: {partition.Problem}. The record ids (columns {table.IdColumnsText}) must include the "
            + "partition key columns for a TRUNCATE of one partition to become deletes of its records. The pipeline stopped before "
            + "that transaction, which stays in the slot. Register IdColumns that include the partition key (PostgreSQL requires them "
            + "in a primary key of a partitioned table) and restart; or, to go past this one transaction on purpose (clients then keep "
            + $"the partition's records), run `synchro-pipeline skip --lsn {_finalLsn}` and restart."));
}
