using Npgsql;
using NpgsqlTypes;
using Synchro.Pipeline.Postgres;

namespace Synchro.Pipeline.Replication;

internal static partial class StartupChecks
{
    // Where each sidecar table is, or will be: in the changelog schema (the pipeline's sessions find them only there). A
    // relation that is not a logged table is never published; nor is anything in pg_catalog.
    private const string SidecarPlacementSql = """
        SELECT s.schema_name, s.name
        FROM (
            SELECT t.ord, t.name, @schema AS schema_name,
                   c.oid IS NULL OR (c.relkind IN ('r', 'p') AND c.relpersistence = 'p') AS publishable
            FROM pg_catalog.unnest(@tables) WITH ORDINALITY AS t(name, ord)
            LEFT JOIN pg_catalog.pg_class c ON c.oid = pg_catalog.to_regclass(pg_catalog.quote_ident(@schema) || '.' || pg_catalog.quote_ident(t.name))
        ) s
        WHERE s.publishable AND s.schema_name <> 'pg_catalog'
        ORDER BY s.ord
        """;

    // FOR ALL TABLES and FOR TABLES IN SCHEMA (PostgreSQL 15+) cover tables created later, so they are read from the
    // publication itself rather than from pg_publication_tables, which lists only tables that exist.
    private const string PublicationScopeSql = """
        SELECT p.puballtables,
               ARRAY(SELECT n.nspname::text
                     FROM pg_catalog.pg_publication_namespace pn
                     JOIN pg_catalog.pg_namespace n ON n.oid = pn.pnnspid
                     WHERE pn.pnpubid = p.oid)
        FROM pg_catalog.pg_publication p
        WHERE p.pubname = @publication
        """;

    private const string PublicationScopeBefore15Sql = """
        SELECT p.puballtables, ARRAY[]::text[]
        FROM pg_catalog.pg_publication p
        WHERE p.pubname = @publication
        """;

    private const string ListedTablesSql = """
        SELECT n.nspname::text, c.relname::text
        FROM pg_catalog.pg_publication p
        JOIN pg_catalog.pg_publication_rel pr ON pr.prpubid = p.oid
        JOIN pg_catalog.pg_class c ON c.oid = pr.prrelid
        JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        WHERE p.pubname = @publication
          AND (n.nspname::text, c.relname::text) IN (SELECT * FROM ROWS FROM (pg_catalog.unnest(@schemas), pg_catalog.unnest(@names)))
        """;

    private const int SchemaPublicationsSinceVersion = 15;

    /// <summary>
    /// With the changelog in the source database, whether the publication covers sidecar tables: then every changelog write
    /// is decoded and sent back to the pipeline, which discards it. Decided from the catalog, so it holds before the
    /// sidecar tables exist (<c>check</c> runs before <c>migrate</c>).
    /// </summary>
    /// <param name="connection">An open connection to the changelog database, which must be the source database.</param>
    /// <param name="schema">The changelog schema, where the sidecar tables are or will be.</param>
    /// <param name="publicationName">The pipeline's publication (one that exists; a missing one is the publication check's error).</param>
    /// <param name="sidecarTables">The names of the sidecar tables, unqualified, as the migration creates them.</param>
    /// <param name="tables">The registered tables, for the publication the fix suggests.</param>
    /// <param name="originFilter">Whether the server could leave the pipeline's writes out by their replication origin
    /// (PostgreSQL 16+ with the writes tagged), which the warning then offers as a way out too.</param>
    /// <param name="ct">Cancels the check.</param>
    /// <returns>One warning naming every covered sidecar table, why it costs and the fix; null when none is covered.</returns>
    public static async Task<string?> CheckSidecarTablesAsync(
        NpgsqlConnection connection,
        string schema,
        string publicationName,
        IReadOnlyList<string> sidecarTables,
        IReadOnlyList<RegisteredTable> tables,
        bool originFilter,
        CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(connection);
        ArgumentNullException.ThrowIfNull(sidecarTables);
        ArgumentNullException.ThrowIfNull(tables);
        if (!PgIdentifier.IsValidObjectName(publicationName))
            return null;

        var placed = await ReadSidecarPlacementAsync(connection, schema, sidecarTables, ct).ConfigureAwait(false);
        if (placed.Count == 0 || await ReadPublicationScopeAsync(connection, publicationName, ct).ConfigureAwait(false) is not { } scope)
            return null;

        var registered = tables.Where(t => PgIdentifier.IsValidObjectName(t.Schema) && PgIdentifier.IsValidObjectName(t.Name))
            .Select(t => (t.Schema, t.Name)).Distinct().ToList();
        HashSet<(string Schema, string Name)> listed = scope.AllTables ? [] : await ReadListedTablesAsync(connection, publicationName, [.. placed, .. registered], ct).ConfigureAwait(false);
        var covered = placed.Where(t => scope.AllTables || scope.Schemas.Contains(t.Schema) || listed.Contains(t)).ToList();
        if (covered.Count == 0)
            return null;

        var publication = PgIdentifier.Quote(publicationName);
        var (how, fix) = scope.AllTables
            ? ("it is FOR ALL TABLES, which includes tables created later",
                "Publish only the registered tables, replacing the publication in one transaction (an all-tables publication cannot be altered into a list): "
                    + $"BEGIN; DROP PUBLICATION {publication}; CREATE PUBLICATION {publication} FOR TABLE {Qualified(registered)}; COMMIT;")
            : Narrowing(publication, covered, scope.Schemas, listed, registered);
        return $"Publication {publication} covers the sidecar tables {Qualified(covered)} ({how}), and the changelog is written to this same "
            + "database: every changelog write is decoded by the walsender and sent back to the pipeline, which discards it, spending CPU, "
            + $"WAL decoding and network on the primary for nothing. {fix} Or write the changelog to another database (ChangelogConnectionString)"
            + (originFilter
                ? ", or turn FilterOriginsOnServer on: the server then leaves the pipeline's writes out, but also every change that logical replication writes into this database."
                : ".");
    }

    /// <summary>Why a publication that lists tables or schemas covers the sidecar tables, and the statements that leave them out.</summary>
    private static (string How, string Fix) Narrowing(
        string publication,
        List<(string Schema, string Name)> covered,
        HashSet<string> schemas,
        HashSet<(string Schema, string Name)> listed,
        List<(string Schema, string Name)> registered)
    {
        var reasons = new List<string>(2);
        var statements = new List<string>(3);
        var listedSidecars = covered.Where(listed.Contains).ToList();
        if (listedSidecars.Count > 0)
        {
            reasons.Add(listedSidecars.Count == covered.Count ? "it lists them" : $"it lists {Qualified(listedSidecars)}");
            statements.Add($"ALTER PUBLICATION {publication} DROP TABLE {Qualified(listedSidecars)};");
        }

        var published = covered.Select(t => t.Schema).Where(schemas.Contains).Distinct(StringComparer.Ordinal).ToList();
        var intro = "Drop them from it";
        if (published.Count > 0)
        {
            var quoted = QuotedList(published.Select(PgIdentifier.Quote));
            reasons.Add($"{(reasons.Count == 0 ? "it " : "")}publishes schema {quoted} (FOR TABLES IN SCHEMA), which includes tables created later");
            statements.Add($"ALTER PUBLICATION {publication} DROP TABLES IN SCHEMA {quoted};");
            // The registered tables the schema published and the publication does not also list by name.
            var keep = registered.Where(t => published.Contains(t.Schema, StringComparer.Ordinal) && !listed.Contains(t)).ToList();
            if (keep.Count > 0)
                statements.Add($"ALTER PUBLICATION {publication} ADD TABLE {Qualified(keep)};");
            intro = keep.Count > 0 ? "Publish the registered tables by name instead of the schema" : "Stop publishing the schema";
        }

        // Together, so that no transaction commits in between: one that did would lose the changes of a table dropped and not yet added.
        var fix = statements.Count == 1
            ? $"{intro}: {statements[0]}"
            : $"{intro}, in one transaction: BEGIN; {string.Join(" ", statements)} COMMIT;";
        return (string.Join(" and ", reasons), fix);
    }

    private static string Qualified(IEnumerable<(string Schema, string Name)> tables) =>
        QuotedList(tables.Select(t => PgIdentifier.QuoteQualified(t.Schema, t.Name)));

    /// <returns>The schema and name of each sidecar table a publication could cover, in <paramref name="sidecarTables"/>'s order.</returns>
    private static async Task<List<(string Schema, string Name)>> ReadSidecarPlacementAsync(NpgsqlConnection connection, string schema, IReadOnlyList<string> sidecarTables, CancellationToken ct)
    {
        var placed = new List<(string, string)>(sidecarTables.Count);
        var command = new NpgsqlCommand(SidecarPlacementSql, connection);
        await using (command.ConfigureAwait(false))
        {
            command.Parameters.Add(new NpgsqlParameter<string[]>("tables", NpgsqlDbType.Array | NpgsqlDbType.Text) { TypedValue = [.. sidecarTables] });
            command.Parameters.Add(new NpgsqlParameter<string>("schema", NpgsqlDbType.Text) { TypedValue = schema });
            var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                while (await reader.ReadAsync(ct).ConfigureAwait(false))
                    placed.Add((reader.GetString(0), reader.GetString(1)));
            }
        }

        return placed;
    }

    private static async Task<(bool AllTables, HashSet<string> Schemas)?> ReadPublicationScopeAsync(NpgsqlConnection connection, string publicationName, CancellationToken ct)
    {
        var sql = connection.PostgreSqlVersion.Major >= SchemaPublicationsSinceVersion ? PublicationScopeSql : PublicationScopeBefore15Sql;
        var command = new NpgsqlCommand(sql, connection);
        await using (command.ConfigureAwait(false))
        {
            command.Parameters.Add(new NpgsqlParameter<string>("publication", NpgsqlDbType.Text) { TypedValue = publicationName });
            var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                if (!await reader.ReadAsync(ct).ConfigureAwait(false))
                    return null;
                return (reader.GetBoolean(0), new HashSet<string>(reader.GetFieldValue<string[]>(1), StringComparer.Ordinal));
            }
        }
    }

    /// <returns>The tables of <paramref name="candidates"/> the publication lists by name (FOR TABLE, ADD TABLE).</returns>
    private static async Task<HashSet<(string Schema, string Name)>> ReadListedTablesAsync(
        NpgsqlConnection connection,
        string publicationName,
        List<(string Schema, string Name)> candidates,
        CancellationToken ct)
    {
        var listed = new HashSet<(string, string)>();
        var command = new NpgsqlCommand(ListedTablesSql, connection);
        await using (command.ConfigureAwait(false))
        {
            command.Parameters.Add(new NpgsqlParameter<string>("publication", NpgsqlDbType.Text) { TypedValue = publicationName });
            command.Parameters.Add(new NpgsqlParameter<string[]>("schemas", NpgsqlDbType.Array | NpgsqlDbType.Text) { TypedValue = [.. candidates.Select(t => t.Schema)] });
            command.Parameters.Add(new NpgsqlParameter<string[]>("names", NpgsqlDbType.Array | NpgsqlDbType.Text) { TypedValue = [.. candidates.Select(t => t.Name)] });
            var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                while (await reader.ReadAsync(ct).ConfigureAwait(false))
                    listed.Add((reader.GetString(0), reader.GetString(1)));
            }
        }

        return listed;
    }
}
