using Npgsql;
using Synchro.Pipeline.Postgres;

namespace Synchro.Pipeline.Replication;

// Partitioned tables: rows live in the leaf partitions, so replica identity is each leaf's, and a unique key (hence the
// record id) must include the partition key of every level below the registered table.
internal static partial class StartupChecks
{
    // Every member of the partition tree of each registered partitioned table: leaves with their replica identity, partitioned
    // members with their partition key columns ('' for an expression). Foreign-table leaves are left out: they are never published.
    private const string PartitionTreesSql = """
        SELECT t.ord::int,
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
        CROSS JOIN LATERAL pg_catalog.pg_partition_tree(r.oid) tr
        JOIN pg_catalog.pg_class c ON c.oid = tr.relid
        JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind <> 'f'
        ORDER BY t.ord, tr.level, n.nspname, c.relname
        """;

    /// <summary>A leaf partition: its quoted name and replica identity, as in <see cref="TableCatalog"/>.</summary>
    private sealed record LeafPartition(string QuotedName, char ReplicaIdentity, string[] PrimaryKey, string[] IdentityIndex);

    /// <summary>
    /// The leaves of a registered partitioned table, and the partition key columns of each partitioned level from it down to them
    /// ('' for an expression).
    /// </summary>
    private sealed record PartitionTree(List<LeafPartition> Leaves, List<string[]> Keys)
    {
        /// <summary>The partition key columns, each once, in tree order; '' when some level is partitioned by an expression.</summary>
        public IEnumerable<string> KeyColumns => Keys.SelectMany(k => k).Distinct(StringComparer.Ordinal);
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
                    var tree = trees[reader.GetInt32(0) - 1] ??= new PartitionTree([], []);
                    if (reader.GetBoolean(1))
                    {
                        tree.Leaves.Add(new LeafPartition(
                            PgIdentifier.QuoteQualified(reader.GetString(2), reader.GetString(3)), reader.GetChar(4), reader.GetFieldValue<string[]>(5), reader.GetFieldValue<string[]>(6)));
                    }
                    else
                    {
                        tree.Keys.Add(reader.GetFieldValue<string[]>(7));
                    }
                }
            }
        }

        return trees;
    }

    /// <summary>The partition key columns of <paramref name="tree"/> that are not id columns; '' stands for an expression.</summary>
    private static List<string> KeyColumnsOutsideId(PartitionTree tree, IReadOnlyList<string> ids) =>
        tree.KeyColumns.Where(c => !ids.Contains(c, StringComparer.Ordinal)).ToList();

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

        // The id includes every partition key column below the table (CheckIdUnique holds it to a unique key, which PostgreSQL makes
        // include them), so a TRUNCATE of one partition names the records it held.
        var perPartition = $"Publication {publication} publishes each partition of {name} under the partition's own name"
            + (viaRoot ? "" : " (publish_via_partition_root = false)");
        return truncatePublished
            ? $"{perPartition}. DETACH PARTITION or DROP of a partition sends no deletes: clients keep its records; TRUNCATE the partition first if they must drop them."
            : $"{perPartition}. {DetachDeletes}";
    }
}
