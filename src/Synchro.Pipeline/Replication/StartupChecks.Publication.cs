using System.Globalization;
using Npgsql;
using NpgsqlTypes;
using Synchro.Pipeline.Postgres;

namespace Synchro.Pipeline.Replication;

internal static partial class StartupChecks
{
    // can_unset_via_root: SET (publish_via_partition_root = false) is refused while a partitioned member has a column list or row filter.
    private const string PublicationSql = """
        SELECT p.pubinsert, p.pubupdate, p.pubdelete, p.pubtruncate, p.pubviaroot,
               NOT EXISTS (SELECT FROM pg_catalog.pg_publication_rel pr
                           JOIN pg_catalog.pg_class c ON c.oid = pr.prrelid
                           WHERE pr.prpubid = p.oid AND c.relkind = 'p' AND {0})
        FROM pg_catalog.pg_publication p
        WHERE p.pubname = @publication
        """;

    // One row per leaf of each registered table (the table itself when it is not partitioned; none for a partitioned table without
    // partitions): the relation its changes are published as (itself, or with publish_via_partition_root = true its topmost published
    // ancestor), that relation's published columns (PostgreSQL 15+ column lists, all columns when there is none), and whether that relation
    // is the registered table or one of its partitions. pg_publication_tables resolves FOR TABLE, FOR TABLES IN SCHEMA and FOR ALL TABLES
    // alike (materialized: evaluated once, not per leaf). included: the table or an ancestor is a member, so partitions created later are
    // published too.
    private const string PublishedLeavesSql = """
        WITH published AS MATERIALIZED (
            SELECT c.oid AS relid, {0} AS attnames
            FROM pg_catalog.pg_publication_tables pt
            JOIN pg_catalog.pg_namespace n ON n.nspname = pt.schemaname
            JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = pt.tablename
            WHERE pt.pubname = @publication),
        pub AS (SELECT oid, puballtables FROM pg_catalog.pg_publication WHERE pubname = @publication)
        SELECT t.ord::int,
               ln.nspname::text, lc.relname::text,
               pn.nspname::text, pc.relname::text,
               p.attnames,
               p.relid = r.oid OR p.relid IN (SELECT relid FROM pg_catalog.pg_partition_tree(r.oid)),
               (SELECT pub.puballtables
                       OR EXISTS (SELECT FROM pg_catalog.pg_publication_rel pr
                                  WHERE pr.prpubid = pub.oid
                                    AND (pr.prrelid = r.oid OR pr.prrelid IN (SELECT relid FROM pg_catalog.pg_partition_ancestors(r.oid))))
                       {1}
                FROM pub)
        FROM ROWS FROM (pg_catalog.unnest(@schemas), pg_catalog.unnest(@names)) WITH ORDINALITY AS t(schema_name, table_name, ord)
        JOIN pg_catalog.pg_namespace rn ON rn.nspname = t.schema_name
        JOIN pg_catalog.pg_class r ON r.relnamespace = rn.oid AND r.relname = t.table_name
        LEFT JOIN LATERAL (SELECT tr.relid FROM pg_catalog.pg_partition_tree(r.oid) tr JOIN pg_catalog.pg_class c ON c.oid = tr.relid
                           WHERE tr.isleaf AND c.relkind <> 'f'
                           UNION ALL
                           SELECT r.oid WHERE r.relkind <> 'p' AND NOT r.relispartition) leaf ON true
        LEFT JOIN pg_catalog.pg_class lc ON lc.oid = leaf.relid
        LEFT JOIN pg_catalog.pg_namespace ln ON ln.oid = lc.relnamespace
        LEFT JOIN LATERAL (SELECT pb.relid, pb.attnames
                           FROM published pb
                           WHERE pb.relid = leaf.relid OR pb.relid IN (SELECT relid FROM pg_catalog.pg_partition_ancestors(leaf.relid))
                           LIMIT 1) p ON true
        LEFT JOIN pg_catalog.pg_class pc ON pc.oid = p.relid
        LEFT JOIN pg_catalog.pg_namespace pn ON pn.oid = pc.relnamespace
        ORDER BY t.ord, ln.nspname, lc.relname
        """;

    // FOR TABLES IN SCHEMA also publishes the partitions, in any schema, of the partitioned tables in a published schema.
    private const string SchemaMemberSql = """
        OR EXISTS (SELECT FROM pg_catalog.pg_publication_namespace pn
                   WHERE pn.pnpubid = pub.oid
                     AND pn.pnnspid IN (SELECT c.relnamespace FROM pg_catalog.pg_class c
                                        WHERE c.oid = r.oid OR c.oid IN (SELECT relid FROM pg_catalog.pg_partition_ancestors(r.oid))))
        """;

    private const int ColumnListsSinceVersion = 15;

    /// <summary>
    /// How the publication publishes one <paramref name="Leaf"/> of a registered table (the table itself when it is not partitioned):
    /// <paramref name="PublishedAs"/> is the relation (quoted, and <paramref name="PublishedAsName"/> as in the catalog) its changes are
    /// published as, null when the publication leaves the leaf out; <paramref name="Columns"/> are the columns published, null for all of
    /// them (or before PostgreSQL 15); <paramref name="UnderTable"/> is whether that relation is the registered table or one of its
    /// partitions, not an ancestor.
    /// </summary>
    private sealed record PublishedLeaf(string Leaf, string? PublishedAs, (string Schema, string Name)? PublishedAsName, string[]? Columns, bool UnderTable);

    /// <summary>
    /// How the publication covers one registered table: its <paramref name="Leaves"/>, and whether it is <paramref name="Included"/>
    /// (it or an ancestor is a member, so every partition, including future ones, is published).
    /// </summary>
    private sealed record TableCoverage(List<PublishedLeaf> Leaves, bool Included)
    {
        public bool Published => Leaves.Count == 0 ? Included : Leaves.Any(l => l.PublishedAs is not null);
    }

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

        var coverage = await ReadCoverageAsync(connection, publicationName, existing, ct).ConfigureAwait(false);
        var lacking = existing.Where((_, i) => !coverage[i].Published).ToList();
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

        var registered = existing.Select(t => (t.Table.Schema, t.Table.Name)).ToHashSet();
        for (var i = 0; i < existing.Count; i++)
        {
            var table = existing[i];
            if (!coverage[i].Published)
                continue;
            var leaves = coverage[i].Leaves;
            var left = leaves.Where(l => l.PublishedAs is null).Select(l => l.Leaf).ToList();
            if (left.Count > 0)
            {
                var which = left.Count == 1 ? $"partition {left[0]}" : $"partitions {QuotedList(left)}";
                warnings.Add($"Publication {publication} does not include {which} of table {table.QuotedName}, so {(left.Count == 1 ? "its" : "their")} changes will "
                    + $"not reach the changelog; add the whole table, with the partitions created later, with ALTER PUBLICATION {publication} ADD TABLE {table.QuotedName};");
            }

            var routed = false;
            foreach (var ancestor in leaves.Where(l => l.PublishedAs is not null && !l.UnderTable).DistinctBy(l => l.PublishedAs))
            {
                routed = true;
                if (registered.Contains(ancestor.PublishedAsName!.Value))
                    continue;
                var unset = kinds.CanUnsetViaRoot ? $", or run ALTER PUBLICATION {publication} SET (publish_via_partition_root = false);" : ".";
                errors.Add($"Publication {publication} publishes the changes of table {table.QuotedName} as changes of its partitioned ancestor "
                    + $"{ancestor.PublishedAs} (publish_via_partition_root = true), which is not registered, so they would not reach the changelog; "
                    + $"register {ancestor.PublishedAs} instead of {table.QuotedName}{unset}");
            }

            foreach (var member in leaves.Where(l => l.Columns is not null).DistinctBy(l => l.PublishedAs))
            {
                var leftOut = table.Columns.Where(c => !member.Columns!.Contains(c, StringComparer.Ordinal)).Select(PgIdentifier.Quote).ToList();
                if (leftOut.Count == 0)
                    continue;
                var relation = member.PublishedAs == table.QuotedName ? $"table {table.QuotedName}" : $"table {table.QuotedName} (as {member.PublishedAs})";
                errors.Add($"Publication {publication} publishes {relation} with a column list that leaves out "
                    + $"{QuotedList(leftOut)}, which the table registry needs; publish every column with ALTER PUBLICATION {publication} "
                    + $"DROP TABLE {member.PublishedAs}; ALTER PUBLICATION {publication} ADD TABLE {member.PublishedAs};");
            }

            if (table.Kind == 'p' && !routed)
            {
                var viaRoot = leaves.Count == 0 ? kinds.ViaRoot : leaves.Any(l => l.PublishedAs is not null && l.PublishedAs != l.Leaf);
                warnings.Add(PartitionedTableNotice(publication, table, viaRoot, kinds.ViaRoot, kinds.Truncate, kinds.CanUnsetViaRoot));
            }
        }
    }

    private static async Task<(bool Insert, bool Update, bool Delete, bool Truncate, bool ViaRoot, bool CanUnsetViaRoot)?> ReadPublicationAsync(
        NpgsqlConnection connection,
        string publicationName,
        CancellationToken ct)
    {
        var filters = connection.PostgreSqlVersion.Major >= ColumnListsSinceVersion ? "(pr.prattrs IS NOT NULL OR pr.prqual IS NOT NULL)" : "false";
        var command = new NpgsqlCommand(string.Format(CultureInfo.InvariantCulture, PublicationSql, filters), connection);
        await using (command.ConfigureAwait(false))
        {
            command.Parameters.Add(new NpgsqlParameter<string>("publication", NpgsqlDbType.Text) { TypedValue = publicationName });
            var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                if (!await reader.ReadAsync(ct).ConfigureAwait(false))
                    return null;
                return (reader.GetBoolean(0), reader.GetBoolean(1), reader.GetBoolean(2), reader.GetBoolean(3), reader.GetBoolean(4), reader.GetBoolean(5));
            }
        }
    }

    /// <returns>Per table (in the order of <paramref name="tables"/>), how the publication covers it.</returns>
    private static async Task<List<TableCoverage>> ReadCoverageAsync(
        NpgsqlConnection connection,
        string publicationName,
        List<CheckableTable> tables,
        CancellationToken ct)
    {
        var since15 = connection.PostgreSqlVersion.Major >= ColumnListsSinceVersion;
        var sql = string.Format(CultureInfo.InvariantCulture, PublishedLeavesSql, since15 ? "pt.attnames::text[]" : "NULL::text[]", since15 ? SchemaMemberSql : "");
        var coverage = new List<TableCoverage>(tables.Count);
        var leaves = tables.Select(_ => new List<PublishedLeaf>()).ToList();
        var included = new bool[tables.Count];
        var command = new NpgsqlCommand(sql, connection);
        await using (command.ConfigureAwait(false))
        {
            command.Parameters.Add(new NpgsqlParameter<string>("publication", NpgsqlDbType.Text) { TypedValue = publicationName });
            AddTableNames(command, tables);
            var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                while (await reader.ReadAsync(ct).ConfigureAwait(false))
                {
                    var i = reader.GetInt32(0) - 1;
                    included[i] = reader.GetBoolean(7);
                    if (reader.IsDBNull(1))
                        continue;
                    (string, string)? publishedAs = reader.IsDBNull(3) ? null : (reader.GetString(3), reader.GetString(4));
                    leaves[i].Add(new PublishedLeaf(
                        PgIdentifier.QuoteQualified(reader.GetString(1), reader.GetString(2)),
                        publishedAs is var (schema, name) ? PgIdentifier.QuoteQualified(schema, name) : null,
                        publishedAs,
                        reader.IsDBNull(5) ? null : reader.GetFieldValue<string[]>(5),
                        !reader.IsDBNull(6) && reader.GetBoolean(6)));
                }
            }
        }

        for (var i = 0; i < tables.Count; i++)
            coverage.Add(new TableCoverage(leaves[i], included[i]));
        return coverage;
    }
}
