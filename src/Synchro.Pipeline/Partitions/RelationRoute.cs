using Synchro.Pipeline.Registry;

namespace Synchro.Pipeline.Partitions;

/// <summary>
/// What a relation of the stream counts for: the registered table it is (by name), or the nearest registered table it is a
/// partition of (<c>publish_via_partition_root = false</c> sends each partition under its own name), or nothing.
/// </summary>
/// <param name="Table">The registered table, or null when neither the relation nor any of its ancestors is registered.</param>
/// <param name="Partition">Set when the relation is a partition of <paramref name="Table"/> rather than the table itself.</param>
internal sealed record RelationRoute(TableRegistration? Table, PartitionFilter? Partition)
{
    public static readonly RelationRoute None = new(null, null);
}

/// <summary>Which of a registered table's records a partition holds, told from their record ids (for a TRUNCATE of the partition).</summary>
/// <param name="Name">The partition, schema-qualified and quoted.</param>
/// <param name="Predicate">
/// A boolean SQL expression over a text column <c>record_id</c>: the partition's constraint (its bound and its ancestors')
/// applied to the id columns cast from the record id. Null when the id columns do not hold the partition key.
/// </param>
/// <param name="Problem">Why <paramref name="Predicate"/> is null: the server's error for the constraint over the id columns.</param>
internal sealed record PartitionFilter(string Name, string? Predicate, string? Problem);
