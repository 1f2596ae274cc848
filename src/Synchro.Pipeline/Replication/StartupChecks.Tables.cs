using System.Globalization;
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

    // The unique indexes of the registered tables: key columns only (not INCLUDE ones), in index order.
    private const string UniqueIndexesSql = """
        SELECT t.ord::int,
               ic.relname::text,
               i.indisprimary,
               i.indimmediate,
               i.indpred IS NOT NULL,
               i.indisvalid,
               0 = ANY (i.indkey[0:i.indnkeyatts - 1]),
               ARRAY(SELECT a.attname::text
                     FROM unnest(i.indkey[0:i.indnkeyatts - 1]) WITH ORDINALITY AS k(attnum, n)
                     JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                     ORDER BY k.n),
               ARRAY(SELECT a.attname::text
                     FROM pg_catalog.pg_attribute a
                     WHERE a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey[0:i.indnkeyatts - 1]) AND NOT a.attnotnull),
               {0}
        FROM unnest(@schemas, @names) WITH ORDINALITY AS t(schema_name, table_name, ord)
        JOIN pg_catalog.pg_namespace n ON n.nspname = t.schema_name
        JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = t.table_name
        JOIN pg_catalog.pg_index i ON i.indrelid = c.oid AND i.indisunique
        JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
        ORDER BY t.ord, i.indisprimary DESC, ic.relname
        """;

    private const int NullsNotDistinctSinceVersion = 15;

    /// <summary>
    /// A registered table whose schema and name are valid, with the valid columns it needs (id first); once found in the catalog, its
    /// <see cref="Kind"/> (pg_class.relkind), only the columns that exist and, for a partitioned table, its <see cref="Partitions"/>.
    /// </summary>
    private sealed record CheckableTable(
        RegisteredTable Table, string QuotedName, IReadOnlyList<string> Columns, bool IdColumnsValid, char Kind = '\0', PartitionTree? Partitions = null);

    /// <summary>Parameters <c>schemas</c> and <c>names</c>: the tables' schemas and names, in the order of <paramref name="tables"/>.</summary>
    private static void AddTableNames(NpgsqlCommand command, List<CheckableTable> tables)
    {
        command.Parameters.Add(new NpgsqlParameter<string[]>("schemas", NpgsqlDbType.Array | NpgsqlDbType.Text) { TypedValue = [.. tables.Select(t => t.Table.Schema)] });
        command.Parameters.Add(new NpgsqlParameter<string[]>("names", NpgsqlDbType.Array | NpgsqlDbType.Text) { TypedValue = [.. tables.Select(t => t.Table.Name)] });
    }

    private sealed record TableCatalog(char Kind, char ReplicaIdentity, HashSet<string> Columns, string[] PrimaryKey, string[] IdentityIndex);

    /// <summary>A unique index (or the primary key) of a registered table: its flags, key columns and those of them that may be NULL.</summary>
    private sealed record UniqueIndex(
        string Name, bool Primary, bool Immediate, bool Partial, bool Valid, bool HasExpression, string[] Columns, string[] NullableColumns, bool NullsNotDistinct);

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
            foreach (var column in table.IdColumns.Concat(table.RequiredColumns).Distinct(StringComparer.Ordinal))
            {
                if (PgIdentifier.IsValidObjectName(column))
                {
                    columns.Add(column);
                    continue;
                }

                errors.Add($"Table {quoted} is registered with an invalid column name '{Display(column)}': a column name is 1 to "
                    + $"{PgIdentifier.MaxLength} bytes of UTF-8 without NUL characters; fix the table registration.");
            }

            checkable.Add(new CheckableTable(table, quoted, columns, table.IdColumns.All(PgIdentifier.IsValidObjectName)));
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
        var uniqueIndexes = await ReadUniqueIndexesAsync(connection, tables, ct).ConfigureAwait(false);
        var partitionTrees = await ReadPartitionTreesAsync(connection, tables, ct).ConfigureAwait(false);
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

            var found = table with { Columns = present, Kind = catalog.Kind, Partitions = catalog.Kind == 'p' ? partitionTrees[i] ?? new PartitionTree([], [], []) : null };
            existing.Add(found);

            // A missing id column is reported above; the key and identity checks would only repeat it.
            var idExists = table.IdColumnsValid && table.Table.IdColumns.All(catalog.Columns.Contains);
            if (!idExists)
                continue;
            CheckIdUnique(found, uniqueIndexes[i], errors);
            // A partitioned table's own identity too: with publish_via_partition_root = true the server sends old rows by it.
            if (found.Partitions is { } tree)
                CheckLeafReplicaIdentity(found, tree, errors);
            CheckReplicaIdentity($"table {table.QuotedName}", table.QuotedName, table.Table.IdColumns, catalog.ReplicaIdentity, catalog.PrimaryKey, catalog.IdentityIndex, errors);
        }

        return existing;
    }

    private static async Task<TableCatalog?[]> ReadTableCatalogsAsync(NpgsqlConnection connection, List<CheckableTable> tables, CancellationToken ct)
    {
        var catalogs = new TableCatalog?[tables.Count];
        var command = new NpgsqlCommand(TablesSql, connection);
        await using (command.ConfigureAwait(false))
        {
            AddTableNames(command, tables);
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

    /// <summary>Per table (in the order of <paramref name="tables"/>), its unique indexes, the primary key first.</summary>
    private static async Task<List<UniqueIndex>[]> ReadUniqueIndexesAsync(NpgsqlConnection connection, List<CheckableTable> tables, CancellationToken ct)
    {
        var indexes = new List<UniqueIndex>[tables.Count];
        for (var i = 0; i < indexes.Length; i++)
            indexes[i] = [];
        var nullsNotDistinct = connection.PostgreSqlVersion.Major >= NullsNotDistinctSinceVersion ? "i.indnullsnotdistinct" : "false";
        var command = new NpgsqlCommand(string.Format(CultureInfo.InvariantCulture, UniqueIndexesSql, nullsNotDistinct), connection);
        await using (command.ConfigureAwait(false))
        {
            AddTableNames(command, tables);
            var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                while (await reader.ReadAsync(ct).ConfigureAwait(false))
                {
                    indexes[reader.GetInt32(0) - 1].Add(new UniqueIndex(
                        reader.GetString(1), reader.GetBoolean(2), reader.GetBoolean(3), reader.GetBoolean(4), reader.GetBoolean(5), reader.GetBoolean(6),
                        reader.GetFieldValue<string[]>(7), reader.GetFieldValue<string[]>(8), reader.GetBoolean(9)));
                }
            }
        }
        return indexes;
    }

    /// <summary>
    /// One record id must name one row: a primary key or unique index whose columns are all id columns, not partial, not
    /// deferrable and valid, and whose columns cannot hold NULL (or, for a composite id, with NULLS NOT DISTINCT).
    /// </summary>
    private static void CheckIdUnique(CheckableTable table, List<UniqueIndex> indexes, List<string> errors)
    {
        var ids = table.Table.IdColumns;
        var composite = ids.Count > 1;
        var covering = indexes.Where(x => !x.HasExpression && x.Columns.All(c => ids.Contains(c, StringComparer.Ordinal))).ToList();
        if (covering.Any(x => Problem(x, composite) is null))
            return;

        var name = table.QuotedName;
        var idText = composite ? $"record id (columns {QuotedList(ids.Select(PgIdentifier.Quote))})" : $"id column {PgIdentifier.Quote(ids[0])}";
        var why = covering.Count > 0
            ? string.Join("; ", covering.Select(x => $"{Describe(x)} {Problem(x, composite)}"))
            : $"no primary key or unique index is on {(composite ? "those columns or some of them" : "it alone")}";
        var fix = Suggest(table, indexes, composite);
        errors.Add($"Table {name}: its {idText} is not unique: {why}. Two rows could then share a record id, and the changes of one would be "
            + $"written as the other's (a delete of one would take the other out of its buckets). {fix}");
    }

    private static string Describe(UniqueIndex index) => index.Primary
        ? $"its primary key ({QuotedList(index.Columns.Select(PgIdentifier.Quote))})"
        : $"the unique index {PgIdentifier.Quote(index.Name)} on ({QuotedList(index.Columns.Select(PgIdentifier.Quote))})";

    /// <summary>Why <paramref name="index"/> does not make its columns unique for every row, or null when it does.</summary>
    private static string? Problem(UniqueIndex index, bool composite)
    {
        if (!index.Valid)
            return "is not valid (a failed CREATE INDEX CONCURRENTLY; rebuild it with REINDEX)";
        if (index.Partial)
            return "is partial (WHERE ...), so it leaves the other rows free to repeat";
        if (!index.Immediate)
            return "is DEFERRABLE, so duplicates may exist until the transaction ends";
        if (index.NullableColumns.Length == 0 || (composite && index.NullsNotDistinct))
            return null;
        var nullable = QuotedList(index.NullableColumns.Select(PgIdentifier.Quote));
        return composite
            ? $"allows NULL in {nullable}, and rows with NULL there are not kept unique (make the columns NOT NULL, or recreate the index with NULLS NOT DISTINCT)"
            : $"allows NULL in {nullable}, and a NULL id names no record (ALTER TABLE ... ALTER COLUMN {nullable} SET NOT NULL)";
    }

    /// <summary>The key to register instead, or the statement that gives the table one.</summary>
    /// <remarks>A unique key on a partitioned table must include the partition key of every level, so for one the id columns must too.</remarks>
    private static string Suggest(CheckableTable table, List<UniqueIndex> indexes, bool composite)
    {
        var ids = table.Table.IdColumns;
        var outside = OutsideId(table.Partitions?.KeyColumns ?? [], ids);
        var partitionKey = $"a unique key on a partitioned table must include its partition key ({DescribeKeyColumns(table.Partitions?.KeyColumns ?? [])})";
        if (indexes.FirstOrDefault(x => !x.HasExpression && Problem(x, x.Columns.Length > 1) is null) is { } usable)
        {
            var alternative = outside.Count == 0
                ? "or give the table a primary key or unique index on the id column(s) it is registered with."
                : $"{partitionKey}, so none can be on the id column(s) alone (and only an id that includes it lets a TRUNCATE of one partition "
                    + "become deletes of the records it held).";
            return $"Register the table with {IdSetting(usable.Columns)}, the columns of {Describe(usable)} (its record ids then name one row each); {alternative}";
        }
        if (outside.Contains(""))
        {
            return $"{table.QuotedName} is partitioned by an expression, and {partitionKey}, so it can have no unique key; partition it by columns "
                + "instead, and register a key that includes them.";
        }
        if (outside.Count > 0)
        {
            string[] key = [.. ids, .. outside];
            var keyColumns = QuotedList(key.Select(PgIdentifier.Quote));
            return $"As {partitionKey}, register the table with {IdSetting(key)} and give it that key: ALTER TABLE {table.QuotedName} ADD PRIMARY KEY ({keyColumns});";
        }
        var columns = QuotedList(ids.Select(PgIdentifier.Quote));
        return $"Give the table a key on the id column(s): ALTER TABLE {table.QuotedName} ADD PRIMARY KEY ({columns}) "
            + $"(or CREATE UNIQUE INDEX ON {table.QuotedName} ({columns}) with NOT NULL columns), or register the columns of an existing key.";
    }

    /// <summary>The registration setting for an id of <paramref name="columns"/>.</summary>
    private static string IdSetting(IReadOnlyList<string> columns) => columns.Count == 1
        ? $"IdColumn \"{columns[0]}\""
        : $"IdColumns [{string.Join(", ", columns.Select(c => $"\"{c}\""))}]";

    /// <summary>
    /// A delete is attributable only when its old tuple carries the id columns. <paramref name="subject"/> names the relation in messages
    /// (<c>table "s"."t"</c>, or a partition and its registered table); <paramref name="name"/> is the quoted relation whose rows are
    /// deleted (a table or leaf partition), for the fixes.
    /// </summary>
    private static void CheckReplicaIdentity(
        string subject, string name, IReadOnlyList<string> ids, char replicaIdentity, string[] primaryKey, string[] identityIndex, List<string> errors)
    {
        var what = char.ToUpperInvariant(subject[0]) + subject[1..];
        var id = QuotedList(ids.Select(PgIdentifier.Quote));
        var full = $"ALTER TABLE {name} REPLICA IDENTITY FULL";
        switch (replicaIdentity)
        {
            case 'f':
                return;
            case 'n':
                errors.Add($"{what} has REPLICA IDENTITY NOTHING, so its deletes carry no id and cannot be attributed; run "
                    + $"ALTER TABLE {name} REPLICA IDENTITY DEFAULT (with a primary key that includes {id}) or {full}.");
                return;
            case 'd' when primaryKey.Length == 0:
                errors.Add($"{what} has no primary key and REPLICA IDENTITY DEFAULT, so its deletes carry no id and cannot be "
                    + $"attributed; add one with ALTER TABLE {name} ADD PRIMARY KEY ({id}), or run {full}.");
                return;
            case 'd':
                CheckIdInKey(primaryKey, "primary key");
                return;
            case 'i' when identityIndex.Length == 0:
                errors.Add($"{what} has REPLICA IDENTITY USING INDEX but that index no longer exists, so its deletes carry no id; "
                    + $"run {full}, or ALTER TABLE {name} REPLICA IDENTITY USING INDEX on a unique index that includes {id}.");
                return;
            case 'i':
                CheckIdInKey(identityIndex, "replica identity index");
                return;
            default:
                errors.Add($"{what} has an unknown replica identity '{replicaIdentity}'; run {full}.");
                return;
        }

        void CheckIdInKey(string[] key, string keyKind)
        {
            var missing = ids.Where(c => !key.Contains(c, StringComparer.Ordinal)).Select(PgIdentifier.Quote).ToList();
            if (missing.Count == 0)
                return;
            var them = QuotedList(missing);
            var columns = missing.Count == 1 ? $"the id column {them}" : $"the id columns {them}";
            errors.Add($"The replica identity of {subject} is its {keyKind} ({QuotedList(key.Select(PgIdentifier.Quote))}), which does "
                + $"not include {columns}, so its deletes carry no id; run {full}, or make {them} part of the {keyKind}.");
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
