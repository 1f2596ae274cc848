using Npgsql;
using Synchro.Pipeline.Postgres;

namespace Synchro.Pipeline.Replication;

internal static partial class StartupChecks
{
    // The btree indexes of the child tables: name, flags and key columns (not INCLUDE ones) in index order, '' for an expression.
    private const string ParentKeyIndexesSql = """
        SELECT t.ord::int,
               ic.relname::text,
               i.indisvalid,
               i.indpred IS NOT NULL,
               ARRAY(SELECT COALESCE(a.attname::text, '')
                     FROM unnest(i.indkey[0:i.indnkeyatts - 1]) WITH ORDINALITY AS k(attnum, n)
                     LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                     ORDER BY k.n)
        FROM unnest(@schemas, @names) WITH ORDINALITY AS t(schema_name, table_name, ord)
        JOIN pg_catalog.pg_namespace n ON n.nspname = t.schema_name
        JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = t.table_name
        JOIN pg_catalog.pg_index i ON i.indrelid = c.oid
        JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
        JOIN pg_catalog.pg_am am ON am.oid = ic.relam
        WHERE am.amname = 'btree'
        ORDER BY t.ord, ic.relname
        """;

    /// <summary>A btree index of a child table: whether it is valid and partial, and its key columns in order.</summary>
    private sealed record ParentKeyIndex(string Name, bool Valid, bool Partial, string[] Columns);

    /// <summary>
    /// Warns for every child table with no valid, non-partial btree index whose leading key columns are its parent foreign key.
    /// </summary>
    /// <remarks>
    /// A parent's children are found by equality on every foreign-key column (one column: <c>= ANY</c>; several: a join to
    /// the arrays of their values), which a btree index serves when those columns lead it in any order; the suggested index
    /// lists them in the key's order. Tables and columns that do not exist were reported as errors and are not checked.
    /// </remarks>
    private static async Task CheckParentKeyIndexesAsync(NpgsqlConnection connection, List<CheckableTable> existing, List<string> warnings, CancellationToken ct)
    {
        var children = existing
            .Where(t => t.Table.ParentForeignKey.Count > 0 && t.Table.ParentForeignKey.All(c => t.Columns.Contains(c, StringComparer.Ordinal)))
            .ToList();
        if (children.Count == 0)
            return;

        var indexes = await ReadParentKeyIndexesAsync(connection, children, ct).ConfigureAwait(false);
        for (var i = 0; i < children.Count; i++)
        {
            var key = children[i].Table.ParentForeignKey;
            var leading = indexes[i].Where(x => LeadsWith(x.Columns, key)).ToList();
            if (!leading.Any(x => x.Valid && !x.Partial))
                warnings.Add(ParentKeyIndexWarning(children[i], leading));
        }
    }

    /// <summary>Whether the first <c>key.Count</c> columns of <paramref name="columns"/> are the columns of <paramref name="key"/>, in any order.</summary>
    private static bool LeadsWith(string[] columns, IReadOnlyList<string> key)
        => columns.Length >= key.Count && key.All(c => Array.IndexOf(columns, c, 0, key.Count) >= 0);

    private static string ParentKeyIndexWarning(CheckableTable child, List<ParentKeyIndex> unusable)
    {
        var table = child.QuotedName;
        var key = child.Table.ParentForeignKey;
        var columns = QuotedList(key.Select(PgIdentifier.Quote));
        var parent = child.Table.Parent is var (schema, name) ? $"its parent table {PgIdentifier.QuoteQualified(schema, name)}" : "its parent table";
        var partitioned = child.Kind == 'p';
        var found = string.Concat(unusable.Select(x => "; " + UnusableReason(child.Table.Schema, x, partitioned)));
        var fix = partitioned
            ? $"Create the index (a partitioned table takes no CONCURRENTLY, so this holds off writes to it while it builds; to avoid that, create it ON ONLY "
                + $"the table, then CONCURRENTLY on each partition, and ATTACH each): CREATE INDEX ON {table} ({columns});"
            : $"Create the index (CONCURRENTLY builds it without blocking writes; run it on its own, outside a transaction block): "
                + $"CREATE INDEX CONCURRENTLY ON {table} ({columns});";
        var keyText = key.Count == 1 ? $"its parent foreign key column {columns}" : $"its parent foreign key columns ({columns})";
        return $"Table {table} has no index that starts with {keyText}{found}. When a record of {parent} changes buckets (a new owner or parent, "
            + $"a soft delete or restore), the pipeline finds that record's children in {table} by this key, and without an index each such lookup "
            + "reads the whole table; so does PostgreSQL on every delete of a parent row when the key is a FOREIGN KEY constraint. "
            + fix;
    }

    private static string UnusableReason(string schema, ParentKeyIndex index, bool partitioned)
    {
        var quoted = PgIdentifier.Quote(index.Name);
        if (index.Valid)
            return $"the index {quoted} on it is partial (WHERE ...), which a lookup by the key alone cannot use";
        return partitioned
            ? $"the index {quoted} on it is not valid (not every partition has its index attached)"
            : $"the index {quoted} on it is not valid (a CREATE INDEX CONCURRENTLY failed or is still running; drop a failed one with DROP INDEX CONCURRENTLY {PgIdentifier.QuoteQualified(schema, index.Name)})";
    }

    /// <summary>Per child table (in the order of <paramref name="children"/>), its btree indexes.</summary>
    private static async Task<List<ParentKeyIndex>[]> ReadParentKeyIndexesAsync(NpgsqlConnection connection, List<CheckableTable> children, CancellationToken ct)
    {
        var indexes = new List<ParentKeyIndex>[children.Count];
        for (var i = 0; i < indexes.Length; i++)
            indexes[i] = [];
        var command = new NpgsqlCommand(ParentKeyIndexesSql, connection);
        await using (command.ConfigureAwait(false))
        {
            AddTableNames(command, children);
            var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                while (await reader.ReadAsync(ct).ConfigureAwait(false))
                {
                    indexes[reader.GetInt32(0) - 1].Add(new ParentKeyIndex(
                        reader.GetString(1), reader.GetBoolean(2), reader.GetBoolean(3), reader.GetFieldValue<string[]>(4)));
                }
            }
        }
        return indexes;
    }
}
