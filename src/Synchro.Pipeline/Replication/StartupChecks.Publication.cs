using Npgsql;
using NpgsqlTypes;
using Synchro.Pipeline.Postgres;

namespace Synchro.Pipeline.Replication;

internal static partial class StartupChecks
{
    private const string PublicationSql = """
        SELECT pubinsert, pubupdate, pubdelete, pubtruncate
        FROM pg_catalog.pg_publication
        WHERE pubname = @publication
        """;

    // pg_publication_tables resolves FOR TABLE, FOR TABLES IN SCHEMA and FOR ALL TABLES alike. Its attnames
    // (PostgreSQL 15+, column lists) names the published columns: all of them when there is no column list.
    private const string PublishedTablesSql = """
        SELECT pt.schemaname::text, pt.tablename::text, pt.attnames::text[]
        FROM pg_catalog.pg_publication_tables pt
        WHERE pt.pubname = @publication
          AND (pt.schemaname::text, pt.tablename::text) IN (SELECT * FROM ROWS FROM (pg_catalog.unnest(@schemas), pg_catalog.unnest(@names)))
        """;

    private const string PublishedTablesBefore15Sql = """
        SELECT pt.schemaname::text, pt.tablename::text, NULL::text[]
        FROM pg_catalog.pg_publication_tables pt
        WHERE pt.pubname = @publication
          AND (pt.schemaname::text, pt.tablename::text) IN (SELECT * FROM ROWS FROM (pg_catalog.unnest(@schemas), pg_catalog.unnest(@names)))
        """;

    private const int ColumnListsSinceVersion = 15;

    private static async Task CheckPublicationAsync(
        NpgsqlConnection connection,
        string database,
        string publicationName,
        List<CheckableTable> tables,
        List<CheckableTable> existing,
        List<string> errors,
        List<string> warnings,
        CancellationToken ct)
    {
        var publication = PgIdentifier.Quote(publicationName);
        var publishes = await ReadPublicationAsync(connection, publicationName, ct).ConfigureAwait(false);
        if (publishes is not { } kinds)
        {
            // Tables that do not exist yet are left out: CREATE PUBLICATION would fail on them.
            var named = existing.Count > 0 ? existing : tables;
            var target = named.Count == 0 ? "ALL TABLES" : "TABLE " + QuotedList(named.Select(t => t.QuotedName));
            errors.Add($"Publication {publication} does not exist in database {PgIdentifier.Quote(database)}; create it with "
                + $"CREATE PUBLICATION {publication} FOR {target};");
            return;
        }

        var unpublished = new List<string>(3);
        if (!kinds.Insert)
            unpublished.Add("insert");
        if (!kinds.Update)
            unpublished.Add("update");
        if (!kinds.Delete)
            unpublished.Add("delete");
        if (unpublished.Count > 0)
        {
            errors.Add($"Publication {publication} does not publish {string.Join(", ", unpublished)} changes, so they would never reach "
                + $"the changelog; run ALTER PUBLICATION {publication} SET (publish = 'insert, update, delete, truncate');");
        }
        else if (!kinds.Truncate)
        {
            warnings.Add($"Publication {publication} does not publish TRUNCATE, so clients would keep the rows of a truncated table; "
                + $"run ALTER PUBLICATION {publication} SET (publish = 'insert, update, delete, truncate');");
        }

        if (existing.Count == 0)
            return;

        var published = await ReadPublishedTablesAsync(connection, publicationName, existing, ct).ConfigureAwait(false);
        var lacking = existing.Where(t => !published.ContainsKey((t.Table.Schema, t.Table.Name))).ToList();
        if (lacking.Count == existing.Count)
        {
            errors.Add($"Publication {publication} includes none of the registered tables, so the pipeline would receive no changes; "
                + $"add them with ALTER PUBLICATION {publication} ADD TABLE {QuotedList(lacking.Select(t => t.QuotedName))};");
            return;
        }

        foreach (var table in lacking)
        {
            warnings.Add($"Publication {publication} does not include table {table.QuotedName}, so its changes will not reach the "
                + $"changelog; add it with ALTER PUBLICATION {publication} ADD TABLE {table.QuotedName};");
        }

        foreach (var table in existing)
        {
            if (!published.TryGetValue((table.Table.Schema, table.Table.Name), out var columns) || columns is null)
                continue;
            var left = table.Columns.Where(c => !columns.Contains(c, StringComparer.Ordinal)).Select(PgIdentifier.Quote).ToList();
            if (left.Count == 0)
                continue;
            errors.Add($"Publication {publication} publishes table {table.QuotedName} with a column list that leaves out "
                + $"{QuotedList(left)}, which the table registry needs; publish every column with ALTER PUBLICATION {publication} "
                + $"DROP TABLE {table.QuotedName}; ALTER PUBLICATION {publication} ADD TABLE {table.QuotedName};");
        }
    }

    private static async Task<(bool Insert, bool Update, bool Delete, bool Truncate)?> ReadPublicationAsync(
        NpgsqlConnection connection,
        string publicationName,
        CancellationToken ct)
    {
        var command = new NpgsqlCommand(PublicationSql, connection);
        await using (command.ConfigureAwait(false))
        {
            command.Parameters.Add(new NpgsqlParameter<string>("publication", NpgsqlDbType.Text) { TypedValue = publicationName });
            var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                if (!await reader.ReadAsync(ct).ConfigureAwait(false))
                    return null;
                return (reader.GetBoolean(0), reader.GetBoolean(1), reader.GetBoolean(2), reader.GetBoolean(3));
            }
        }
    }

    /// <returns>The registered tables the publication includes, with their published columns (<see langword="null"/> before PostgreSQL 15).</returns>
    private static async Task<Dictionary<(string Schema, string Name), string[]?>> ReadPublishedTablesAsync(
        NpgsqlConnection connection,
        string publicationName,
        List<CheckableTable> tables,
        CancellationToken ct)
    {
        var sql = connection.PostgreSqlVersion.Major >= ColumnListsSinceVersion ? PublishedTablesSql : PublishedTablesBefore15Sql;
        var published = new Dictionary<(string, string), string[]?>();
        var command = new NpgsqlCommand(sql, connection);
        await using (command.ConfigureAwait(false))
        {
            command.Parameters.Add(new NpgsqlParameter<string>("publication", NpgsqlDbType.Text) { TypedValue = publicationName });
            AddTableNames(command, tables);
            var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                while (await reader.ReadAsync(ct).ConfigureAwait(false))
                    published[(reader.GetString(0), reader.GetString(1))] = reader.IsDBNull(2) ? null : reader.GetFieldValue<string[]>(2);
            }
        }

        return published;
    }
}
