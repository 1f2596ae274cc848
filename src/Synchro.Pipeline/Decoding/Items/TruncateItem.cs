using Synchro.Pipeline.Partitions;
using Synchro.Pipeline.Protocol.Messages;
using Synchro.Pipeline.Registry;

namespace Synchro.Pipeline.Decoding.Items;

/// <summary>
/// A TRUNCATE of registered tables at this point of a source transaction. It never ends the transaction: the changes
/// before it came in earlier items (their edges applied first), and those after it follow in later ones.
/// </summary>
internal sealed class TruncateItem(IReadOnlyList<TruncatedTable> tables, TruncateOptions options) : DecodedItem
{
    /// <summary>The registered tables (or partitions of them) emptied, in the message's order, without duplicates.</summary>
    public IReadOnlyList<TruncatedTable> Tables { get; } = tables;

    /// <summary>CASCADE and RESTART IDENTITY, for the report.</summary>
    public TruncateOptions Options { get; } = options;
}

/// <summary>A registered table truncated whole, or one partition of it (<see cref="PartitionFilter.Predicate"/> set).</summary>
internal readonly record struct TruncatedTable(TableRegistration Table, PartitionFilter? Partition)
{
    public override string ToString() => Partition is { } partition ? $"{Table} (partition {partition.Name})" : Table.ToString();
}
