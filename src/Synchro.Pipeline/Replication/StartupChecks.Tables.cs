using Npgsql;
using NpgsqlTypes;
using Synchro.Pipeline.Postgres;

namespace Synchro.Pipeline.Replication;

internal static partial class StartupChecks
{
    private const string TablesSql = """
        SELECT c.relkind,
               c.relreplident,
               ARRAY(SELECT a.attname::text
                     FROM pg_catalog.pg_attribute a
                     WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped),
               ARRAY(SELECT a.attname::text
                     FROM pg_catalog.pg_index i
                     JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
                     WHERE i.indrelid = c.oid AND i.indisprimary),
               ARRAY(SELECT a.attname::text
                     FROM pg_catalog.pg_index i
                     JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
                     WHERE i.indrelid = c.oid AND i.indisreplident)
        FROM ROWS FROM (pg_catalog.unnest(@schemas), pg_catalog.unnest(@names)) WITH ORDINALITY AS t(schema_name, table_name, ord)
        LEFT JOIN (pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace)
               ON n.nspname = t.schema_name AND c.relname = t.table_name
        ORDER BY t.ord
        """;

    /// <summary>A registered table whose schema and name are valid, with the valid columns it needs (id first).</summary>
    private sealed record CheckableTable(RegisteredTable Table, string QuotedName, IReadOnlyList<string> Columns, bool IdColumnValid);

    private sealed record TableCatalog(char Kind, char ReplicaIdentity, HashSet<string> Columns, string[] PrimaryKey, string[] IdentityIndex);

    private static List<CheckableTable> CheckTableNames(IReadOnlyList<RegisteredTable> tables, List<string> errors)
    {
        if (tables.Count == 0)
            errors.Add("No tables are registered; register at least one table for the pipeline to consume.");

        var checkable = new List<CheckableTable>(tables.Count);
        foreach (var table in tables)
        {
            if (!PgIdentifier.IsValidObjectName(table.Schema) || !PgIdentifier.IsValidObjectName(table.Name))
            {
                errors.Add($"Registered table '{Display(table.Schema)}.{Display(table.Name)}' has an invalid schema or table name: each must be 1 to "
                    + $"{PgIdentifier.MaxLength} bytes of UTF-8 without NUL characters; fix the table registration.");
                continue;
            }

            var quoted = PgIdentifier.QuoteQualified(table.Schema, table.Name);
            var columns = new List<string>();
            foreach (var column in table.RequiredColumns.Prepend(table.IdColumn).Distinct(StringComparer.Ordinal))
            {
                if (PgIdentifier.IsValidObjectName(column))
                {
                    columns.Add(column);
                    continue;
                }

                errors.Add($"Table {quoted} is registered with an invalid column name '{Display(column)}': a column name is 1 to "
                    + $"{PgIdentifier.MaxLength} bytes of UTF-8 without NUL characters; fix the table registration.");
            }

            checkable.Add(new CheckableTable(table, quoted, columns, PgIdentifier.IsValidObjectName(table.IdColumn)));
        }

        return checkable;
    }

    /// <returns>The registered tables that exist as tables, each with only its columns that exist.</returns>
    private static async Task<List<CheckableTable>> CheckTablesAsync(
        NpgsqlConnection connection,
        string database,
        List<CheckableTable> tables,
        List<string> errors,
        CancellationToken ct)
    {
        var existing = new List<CheckableTable>(tables.Count);
        if (tables.Count == 0)
            return existing;

        var catalogs = await ReadTableCatalogsAsync(connection, tables, ct).ConfigureAwait(false);
        for (var i = 0; i < tables.Count; i++)
        {
            var table = tables[i];
            var catalog = catalogs[i];
            if (catalog is null)
            {
                errors.Add($"Table {table.QuotedName} does not exist in database {PgIdentifier.Quote(database)}; create it, or fix the "
                    + "table registration (schema and table names are matched exactly, case-sensitive).");
                continue;
            }

            if (catalog.Kind is not ('r' or 'p'))
            {
                errors.Add($"{table.QuotedName} is {DescribeRelationKind(catalog.Kind)}, not a table; logical replication publishes "
                    + "only tables, so register a table.");
                continue;
            }

            var present = new List<string>(table.Columns.Count);
            foreach (var column in table.Columns)
            {
                if (catalog.Columns.Contains(column))
                {
                    present.Add(column);
                    continue;
                }

                errors.Add($"Table {table.QuotedName} has no column {PgIdentifier.Quote(column)}, which the table registry references; "
                    + "add the column, or fix the table registration (column names are matched exactly, case-sensitive).");
            }

            existing.Add(table with { Columns = present });

            // A missing id column is reported above; the identity check would only repeat it.
            var idExists = table.IdColumnValid && catalog.Columns.Contains(table.Table.IdColumn);
            if (idExists)
                CheckReplicaIdentity(table, catalog, errors);
        }

        return existing;
    }

    private static async Task<TableCatalog?[]> ReadTableCatalogsAsync(NpgsqlConnection connection, List<CheckableTable> tables, CancellationToken ct)
    {
        var catalogs = new TableCatalog?[tables.Count];
        var command = new NpgsqlCommand(TablesSql, connection);
        await using (command.ConfigureAwait(false))
        {
            command.Parameters.Add(new NpgsqlParameter<string[]>("schemas", NpgsqlDbType.Array | NpgsqlDbType.Text) { TypedValue = [.. tables.Select(t => t.Table.Schema)] });
            command.Parameters.Add(new NpgsqlParameter<string[]>("names", NpgsqlDbType.Array | NpgsqlDbType.Text) { TypedValue = [.. tables.Select(t => t.Table.Name)] });
            var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                for (var i = 0; await reader.ReadAsync(ct).ConfigureAwait(false); i++)
                {
                    if (reader.IsDBNull(0))
                        continue;
                    catalogs[i] = new TableCatalog(
                        reader.GetChar(0),
                        reader.GetChar(1),
                        new HashSet<string>(reader.GetFieldValue<string[]>(2), StringComparer.Ordinal),
                        reader.GetFieldValue<string[]>(3),
                        reader.GetFieldValue<string[]>(4));
                }
            }
        }

        return catalogs;
    }

    /// <summary>A delete is attributable only when its old tuple carries the id column.</summary>
    private static void CheckReplicaIdentity(CheckableTable table, TableCatalog catalog, List<string> errors)
    {
        var name = table.QuotedName;
        var id = PgIdentifier.Quote(table.Table.IdColumn);
        var full = $"ALTER TABLE {name} REPLICA IDENTITY FULL";
        switch (catalog.ReplicaIdentity)
        {
            case 'f':
                return;
            case 'n':
                errors.Add($"Table {name} has REPLICA IDENTITY NOTHING, so its deletes carry no id and cannot be attributed; run "
                    + $"ALTER TABLE {name} REPLICA IDENTITY DEFAULT (with a primary key that includes {id}) or {full}.");
                return;
            case 'd' when catalog.PrimaryKey.Length == 0:
                errors.Add($"Table {name} has no primary key and REPLICA IDENTITY DEFAULT, so its deletes carry no id and cannot be "
                    + $"attributed; add one with ALTER TABLE {name} ADD PRIMARY KEY ({id}), or run {full}.");
                return;
            case 'd':
                CheckIdInKey(catalog.PrimaryKey, "primary key");
                return;
            case 'i' when catalog.IdentityIndex.Length == 0:
                errors.Add($"Table {name} has REPLICA IDENTITY USING INDEX but that index no longer exists, so its deletes carry no id; "
                    + $"run {full}, or ALTER TABLE {name} REPLICA IDENTITY USING INDEX on a unique index that includes {id}.");
                return;
            case 'i':
                CheckIdInKey(catalog.IdentityIndex, "replica identity index");
                return;
            default:
                errors.Add($"Table {name} has an unknown replica identity '{catalog.ReplicaIdentity}'; run {full}.");
                return;
        }

        void CheckIdInKey(string[] key, string keyKind)
        {
            if (key.Contains(table.Table.IdColumn, StringComparer.Ordinal))
                return;
            errors.Add($"The replica identity of table {name} is its {keyKind} ({QuotedList(key.Select(PgIdentifier.Quote))}), which does "
                + $"not include the id column {id}, so its deletes carry no id; run {full}, or make {id} part of the {keyKind}.");
        }
    }

    private static string DescribeRelationKind(char kind) => kind switch
    {
        'v' => "a view",
        'm' => "a materialized view",
        'f' => "a foreign table",
        'S' => "a sequence",
        'i' or 'I' => "an index",
        'c' => "a composite type",
        't' => "a TOAST table",
        _ => $"a relation of kind '{kind}'",
    };
}
