using System.Collections;
using System.Diagnostics.CodeAnalysis;

namespace Synchro.Pipeline.Registry;

/// <summary>The tables the pipeline turns into changelog rows; changes of any other table are ignored.</summary>
/// <remarks>Fill it, then call <see cref="Validate"/> (the pipeline does at start); it is read-only in use.</remarks>
public sealed class TableRegistry : IEnumerable<TableRegistration>
{
    // Keyed by (schema, name) exactly as the server reports them.
    private readonly Dictionary<(string Schema, string Name), TableRegistration> _tables = [];

    /// <summary>
    /// The SQL bucket function of every table without a <see cref="TableRegistration.BucketFunction"/> of its own:
    /// <c>name</c> or <c>schema.name</c>, signature <c>(table_name text, operation text, new_row jsonb, old_row jsonb) RETURNS SETOF text</c>.
    /// </summary>
    /// <remarks>
    /// Precedence, as in the synchro reference's SQL resolver: a table's own function, then this one, then the table's
    /// owner/bucket-by column or parent chain. So while it is set, it decides the buckets of every table without a function of its own.
    /// </remarks>
    public string? GlobalBucketFunction { get; set; }

    /// <summary>The SQL function that decides <paramref name="table"/>'s buckets, or null when its columns or parent chain do.</summary>
    public string? BucketFunctionOf(TableRegistration table)
    {
        ArgumentNullException.ThrowIfNull(table);
        return table.BucketFunction ?? GlobalBucketFunction;
    }

    /// <summary>The number of registered tables.</summary>
    public int Count => _tables.Count;

    /// <summary>Registers a table.</summary>
    /// <exception cref="ArgumentException">The table is already registered.</exception>
    public TableRegistry Add(TableRegistration table)
    {
        ArgumentNullException.ThrowIfNull(table);
        if (!_tables.TryAdd((table.Schema, table.Name), table))
            throw new ArgumentException($"Table {table} is registered twice.", nameof(table));
        return this;
    }

    /// <summary>The registration of <c>schema.name</c>, if any.</summary>
    public bool TryGet(string schema, string name, [MaybeNullWhen(false)] out TableRegistration table)
        => _tables.TryGetValue((schema, name), out table);

    /// <summary>
    /// Checks the registry as a whole: at least one table; every table either has a bucket column or a
    /// parent; parents are registered; parent chains have no cycles and end at a table with a bucket column.
    /// </summary>
    /// <exception cref="ArgumentException">Lists every problem found, each naming the table and the fix.</exception>
    public void Validate()
    {
        var problems = new List<string>();
        if (_tables.Count == 0)
            problems.Add("no table is registered; register at least one table whose changes should reach the changelog");

        if (GlobalBucketFunction is not null && !BucketFunctionName.IsValid(GlobalBucketFunction))
            problems.Add($"GlobalBucketFunction: {BucketFunctionName.Describe(GlobalBucketFunction)}");
        foreach (var table in _tables.Values)
        {
            if (table.IdSetTwice)
                problems.Add($"{table}: both IdColumn and IdColumns are set; set IdColumns alone for an id of several columns, or IdColumn alone for one");
            if (table.ParentKeySetTwice)
                problems.Add($"{table}: both ParentForeignKeyColumn and ParentForeignKeyColumns are set; set ParentForeignKeyColumns alone for a parent key of several columns, or ParentForeignKeyColumn alone for one");
            if (table.BucketFunction is not null && !BucketFunctionName.IsValid(table.BucketFunction))
                problems.Add($"{table}: BucketFunction {BucketFunctionName.Describe(table.BucketFunction)}");
            // A function rule decides the buckets; the columns and parent chain are not used for them.
            if (BucketFunctionOf(table) is not null)
                continue;
            if (table.ParentTable is null && table.ParentForeignKeyColumns is { } orphanKey)
                problems.Add($"{table}: ParentForeignKeyColumn{(orphanKey.Count > 1 ? "s" : "")} '{string.Join(", ", orphanKey)}' is set without ParentTable");
            if (table.ParentTable is null)
            {
                if (table.BucketColumn is null && !table.GlobalWhenBucketNull)
                    problems.Add($"{table}: no OwnerColumn, BucketByColumn, ParentTable or BucketFunction, so its records belong to no bucket; set one of them (or GlobalWhenBucketNull for a table shared by everyone)");
                continue;
            }
            if (table.ParentForeignKeyColumns is not { } parentKey)
                problems.Add($"{table}: ParentTable '{table.ParentTable}' is set without ParentForeignKeyColumn (the column holding the parent's id)");
            else if (ParentOf(table) is { } parent && parent.IdColumns.Count != parentKey.Count)
                problems.Add(parent.HasCompositeId
                    ? $"{table}: its parent {parent} is identified by {parent.IdColumns.Count} columns ({parent.IdColumnsText}), but {table} names {parentKey.Count} ({string.Join(", ", parentKey)}); set ParentForeignKeyColumns to {table}'s columns holding each of them, in that order"
                    : $"{table}: its parent {parent} is identified by one column ({parent.IdColumnsText}), but {table} names {parentKey.Count} ({string.Join(", ", parentKey)}); set ParentForeignKeyColumn to the one column holding it");
            if (FindChainProblem(table) is { } chainProblem)
                problems.Add(chainProblem);
        }

        if (problems.Count > 0)
            throw new ArgumentException("The table registry is invalid:" + string.Concat(problems.Select(p => Environment.NewLine + " - " + p)));
    }

    /// <summary>The registered parent of <paramref name="table"/>, or null for a table with no parent.</summary>
    public TableRegistration? ParentOf(TableRegistration table)
    {
        ArgumentNullException.ThrowIfNull(table);
        if (table.ParentTable is null)
            return null;
        var (schema, name) = TableRegistration.SplitQualifiedName(table.ParentTable, nameof(table));
        return TryGet(schema, name, out var parent) ? parent : null;
    }

    private string? FindChainProblem(TableRegistration table)
    {
        var seen = new List<TableRegistration> { table };
        for (var current = table; current.ParentTable is not null;)
        {
            var parent = ParentOf(current);
            if (parent is null)
                return $"{current}: ParentTable '{current.ParentTable}' is not registered; register it (with its owner or bucket column) or fix the name";
            if (seen.Contains(parent))
                return $"{table}: the parent chain has a cycle ({string.Join(" -> ", seen.Append(parent))}); one table in it must have an owner or bucket column instead of a parent";
            seen.Add(parent);
            current = parent;
        }
        var root = seen[^1];
        return root.BucketColumn is null && !root.GlobalWhenBucketNull && root != table
            ? $"{table}: its parent chain ends at {root}, which has no OwnerColumn or BucketByColumn; give {root} one"
            : null;
    }

    /// <inheritdoc/>
    public IEnumerator<TableRegistration> GetEnumerator() => _tables.Values.GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
}
