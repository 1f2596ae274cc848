using Npgsql;
using Synchro.Pipeline.Postgres;

namespace Synchro.Pipeline.Replication;

// Partitioned tables: rows live in the leaf partitions, so replica identity is each leaf's, and a unique key (hence the
// record id) must include the partition key of every level below the registered table.
internal static partial class StartupChecks
{
    // Every member of the partition tree of each registered partitioned table: leaves with their replica identity, partitioned
    // members with their partition key columns ('' for an expression); and (negative levels, the root first) the table's own ancestors,
    // whose bounds are part of every leaf's partition constraint. Foreign-table leaves are left out: they are never published.
    private const string PartitionTreesSql = """
        SELECT t.ord::int,
               tr.level < 0,
               tr.isleaf,
               n.nspname::text,
               c.relname::text,
               c.relreplident,
               ARRAY(SELECT a.attname::text
                     FROM pg_catalog.pg_index i
                     JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
                     WHERE i.indrelid = c.oid AND i.indisprimary),
               ARRAY(SELECT a.attname::text
                     FROM pg_catalog.pg_index i
                     JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
                     WHERE i.indrelid = c.oid AND i.indisreplident),
               ARRAY(SELECT COALESCE(a.attname::text, '')
                     FROM pg_catalog.pg_partitioned_table pt
                     CROSS JOIN unnest(pt.partattrs::int2[]) WITH ORDINALITY AS k(attnum, n)
                     LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = pt.partrelid AND a.attnum = k.attnum
                     WHERE pt.partrelid = c.oid
                     ORDER BY k.n)
        FROM ROWS FROM (pg_catalog.unnest(@schemas), pg_catalog.unnest(@names)) WITH ORDINALITY AS t(schema_name, table_name, ord)
        JOIN pg_catalog.pg_namespace rn ON rn.nspname = t.schema_name
        JOIN pg_catalog.pg_class r ON r.relnamespace = rn.oid AND r.relname = t.table_name AND r.relkind = 'p'
        CROSS JOIN LATERAL (SELECT relid, isleaf, level FROM pg_catalog.pg_partition_tree(r.oid)
                            UNION ALL
                            SELECT a.relid, false, -a.n::int FROM pg_catalog.pg_partition_ancestors(r.oid) WITH ORDINALITY AS a(relid, n)
                            WHERE a.relid <> r.oid) tr
        JOIN pg_catalog.pg_class c ON c.oid = tr.relid
        JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind <> 'f'
        ORDER BY t.ord, tr.level, n.nspname, c.relname
        """;

    /// <summary>A leaf partition: its quoted name and replica identity, as in <see cref="TableCatalog"/>.</summary>
    private sealed record LeafPartition(string QuotedName, char ReplicaIdentity, string[] PrimaryKey, string[] IdentityIndex);

    /// <summary>
    /// The leaves of a registered partitioned table, the partition key columns of each partitioned level from it down to them, and those
    /// of its ancestors when it is itself a partition ('' for an expression).
    /// </summary>
    private sealed record PartitionTree(List<LeafPartition> Leaves, List<string[]> Keys, List<string[]> AncestorKeys)
    {
        /// <summary>The partition key columns from the table down, each once, in tree order; '' when some level is partitioned by an expression.</summary>
        /// <remarks>A unique key on the table must include them all.</remarks>
        public IEnumerable<string> KeyColumns => Keys.SelectMany(k => k).Distinct(StringComparer.Ordinal);

        /// <summary>The partition key columns from the root down: every leaf's partition constraint is over them.</summary>
        public IEnumerable<string> ConstraintColumns => AncestorKeys.Concat(Keys).SelectMany(k => k).Distinct(StringComparer.Ordinal);
    }

    /// <summary>Per table (in the order of <paramref name="tables"/>), its partition tree, or null when it is not a partitioned table.</summary>
    private static async Task<PartitionTree?[]> ReadPartitionTreesAsync(NpgsqlConnection connection, List<CheckableTable> tables, CancellationToken ct)
    {
        var trees = new PartitionTree?[tables.Count];
        var command = new NpgsqlCommand(PartitionTreesSql, connection);
        await using (command.ConfigureAwait(false))
        {
            AddTableNames(command, tables);
            var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                while (await reader.ReadAsync(ct).ConfigureAwait(false))
                {
                    var tree = trees[reader.GetInt32(0) - 1] ??= new PartitionTree([], [], []);
                    if (reader.GetBoolean(1))
                    {
                        tree.AncestorKeys.Add(reader.GetFieldValue<string[]>(8));
                    }
                    else if (reader.GetBoolean(2))
                    {
                        tree.Leaves.Add(new LeafPartition(
                            PgIdentifier.QuoteQualified(reader.GetString(3), reader.GetString(4)), reader.GetChar(5), reader.GetFieldValue<string[]>(6), reader.GetFieldValue<string[]>(7)));
                    }
                    else
                    {
                        tree.Keys.Add(reader.GetFieldValue<string[]>(8));
                    }
                }
            }
        }

        return trees;
    }

    /// <summary>The <paramref name="columns"/> that are not id columns; '' stands for an expression.</summary>
    private static List<string> OutsideId(IEnumerable<string> columns, IReadOnlyList<string> ids) =>
        columns.Where(c => !ids.Contains(c, StringComparer.Ordinal)).ToList();

    /// <summary>Partition key columns as shown in a message.</summary>
    private static string DescribeKeyColumns(IEnumerable<string> columns)
    {
        var list = columns.ToList();
        var names = list.Where(c => c.Length > 0).Select(PgIdentifier.Quote).ToList();
        if (list.Contains(""))
            names.Add("an expression");
        return QuotedList(names);
    }

    /// <summary>Deletes are attributable only when each leaf's old tuple carries the id columns: the partitioned table's own setting reaches no partition.</summary>
    private static void CheckLeafReplicaIdentity(CheckableTable table, PartitionTree tree, List<string> errors)
    {
        foreach (var leaf in tree.Leaves)
        {
            CheckReplicaIdentity(
                $"partition {leaf.QuotedName} of table {table.QuotedName}", leaf.QuotedName, table.Table.IdColumns,
                leaf.ReplicaIdentity, leaf.PrimaryKey, leaf.IdentityIndex, errors);
        }
    }

    /// <summary>
    /// What the publication's <c>publish_via_partition_root</c> means for a published partitioned table: which TRUNCATEs reach the
    /// pipeline, and that DETACH or DROP of a partition reaches no client.
    /// <paramref name="underAncestor"/>: some partition's changes are published under a partitioned table above it, so the
    /// publication's <paramref name="viaRoot"/> (publish_via_partition_root) is on and applies.
    /// </summary>
    private static string PartitionedTableNotice(
        string publication, CheckableTable table, bool underAncestor, bool viaRoot, bool truncatePublished, bool canUnsetViaRoot)
    {
        var name = table.QuotedName;
        const string DetachDeletes = "DETACH PARTITION or DROP of a partition sends no deletes: clients keep its records; DELETE its rows first if they must drop them.";
        if (underAncestor)
        {
            var head = $"Publication {publication} publishes the partitions of {name} under the name of the partitioned table (publish_via_partition_root = true)";
            if (!truncatePublished)
                return $"{head}. {DetachDeletes}";
            var avoid = canUnsetViaRoot
                ? $"empty a partition with DELETE instead, or publish each partition under its own name with ALTER PUBLICATION {publication} SET (publish_via_partition_root = false);"
                : "empty a partition with DELETE instead.";
            return $"{head}, so a TRUNCATE of one partition is not sent and clients would keep that partition's records; {avoid} {DetachDeletes}";
        }

        var perPartition = $"Publication {publication} publishes each partition of {name} under the partition's own name"
            + (viaRoot ? "" : " (publish_via_partition_root = false)");
        if (!truncatePublished)
            return $"{perPartition}. {DetachDeletes}";

        // The pipeline turns a TRUNCATE of one partition into deletes of the records whose ids satisfy the partition's constraint, which
        // is over the partition keys from the root down. Below the table the id has them (CheckIdUnique holds it to a unique key, which
        // PostgreSQL makes include them); above it, a partitioned table's ancestors, it need not.
        var outside = OutsideId(table.Partitions?.ConstraintColumns ?? [], table.Table.IdColumns);
        if (outside.Count == 0)
        {
            return $"{perPartition}. DETACH PARTITION or DROP of a partition sends no deletes: clients keep its records; "
                + "TRUNCATE the partition first if they must drop them.";
        }
        var ids = QuotedList(table.Table.IdColumns.Select(PgIdentifier.Quote));
        string[] key = [.. table.Table.IdColumns, .. outside];
        var register = outside.Contains("")
            ? "empty a partition with DELETE instead."
            : $"empty a partition with DELETE instead, or register the table with {IdSetting(key)}, which a unique key and every partition's "
                + "replica identity must then include.";
        return $"{perPartition}, and its registered id columns ({ids}) leave out the partition key {DescribeKeyColumns(outside)} of the tables above it, "
            + "which every partition's bounds include; so a TRUNCATE of one partition will stop the pipeline, as it cannot tell which records "
            + $"the partition held. To avoid that, {register} {DetachDeletes}";
    }
}
