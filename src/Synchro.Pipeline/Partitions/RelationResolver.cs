using System.Text;
using Npgsql;
using NpgsqlTypes;
using Synchro.Pipeline.Postgres;
using Synchro.Pipeline.Protocol;
using Synchro.Pipeline.Registry;

namespace Synchro.Pipeline.Partitions;

/// <summary>
/// Finds, in the source's catalog, what a relation of the stream counts for (<see cref="RelationRoute"/>): asked once per
/// Relation message, which the server sends before a relation's first change in a session and again after it changed
/// (ATTACH and DETACH included), so partitions that appear or go while streaming are followed without a restart.
/// </summary>
/// <remarks>
/// The catalog is read as it is now, not as of the change: a partition detached (or dropped) after its changes were made
/// but before they are read resolves as what it is now. A live pipeline reads within moments of the change, so this only
/// matters when catching up across the DETACH.
/// </remarks>
internal sealed class RelationResolver(NpgsqlDataSource source, TableRegistry registry)
{
    // Its ancestors, nearest first; none for a relation outside a partition tree, or one that no longer exists.
    private const string AncestorsSql = """
        SELECT n.nspname::text, c.relname::text
        FROM pg_catalog.pg_partition_ancestors($1::oid::regclass) WITH ORDINALITY AS a(relid, level)
        JOIN pg_catalog.pg_class c ON c.oid = a.relid
        JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        WHERE a.relid <> $1::oid::regclass
        ORDER BY a.level
        """;

    // The partition's constraint includes its ancestors' (pg_get_partition_constraintdef recurses up to the root).
    private const string ConstraintSql = "SELECT pg_catalog.pg_get_partition_constraintdef($1::oid)";

    private const string IdColumnsSql = """
        SELECT a.attname::text, pg_catalog.format_type(a.atttypid, a.atttypmod),
               CASE WHEN a.attcollation <> 0 AND a.attcollation <> t.typcollation
                    THEN pg_catalog.quote_ident(cn.nspname) || '.' || pg_catalog.quote_ident(co.collname) END
        FROM pg_catalog.pg_attribute a
        JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
        LEFT JOIN pg_catalog.pg_collation co ON co.oid = a.attcollation
        LEFT JOIN pg_catalog.pg_namespace cn ON cn.oid = co.collnamespace
        WHERE a.attrelid = $1::oid AND a.attnum > 0 AND NOT a.attisdropped
        """;

    /// <summary>What <paramref name="relation"/> counts for; a registered name is the table itself, found without a query.</summary>
    public async ValueTask<RelationRoute> ResolveAsync(RelationInfo relation, CancellationToken ct)
    {
        if (registry.TryGet(relation.Schema, relation.Name, out var registered))
            return new RelationRoute(registered, null);
        var connection = await source.OpenConnectionAsync(ct).ConfigureAwait(false);
        await using (connection.ConfigureAwait(false))
        {
            foreach (var (schema, name) in await AncestorsAsync(connection, relation.Oid, ct).ConfigureAwait(false))
            {
                if (!registry.TryGet(schema, name, out var table))
                    continue;
                var partition = PgIdentifier.QuoteQualified(relation.Schema, relation.Name);
                return new RelationRoute(table, await FilterAsync(connection, relation.Oid, partition, table, ct).ConfigureAwait(false));
            }
            return RelationRoute.None;
        }
    }

    private static async Task<List<(string Schema, string Name)>> AncestorsAsync(NpgsqlConnection connection, uint oid, CancellationToken ct)
    {
        var ancestors = new List<(string, string)>(2);
        var command = new NpgsqlCommand(AncestorsSql, connection) { Parameters = { new NpgsqlParameter<uint> { TypedValue = oid, NpgsqlDbType = NpgsqlDbType.Oid } } };
        await using (command.ConfigureAwait(false))
        {
            var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                while (await reader.ReadAsync(ct).ConfigureAwait(false))
                    ancestors.Add((reader.GetString(0), reader.GetString(1)));
            }
        }
        return ancestors;
    }

    /// <summary>The partition's constraint over the record ids of <paramref name="table"/>, tried on the source so a constraint on other columns is known now.</summary>
    private static async Task<PartitionFilter> FilterAsync(NpgsqlConnection connection, uint oid, string partition, TableRegistration table, CancellationToken ct)
    {
        string? constraint;
        var command = new NpgsqlCommand(ConstraintSql, connection) { Parameters = { new NpgsqlParameter<uint> { TypedValue = oid, NpgsqlDbType = NpgsqlDbType.Oid } } };
        await using (command.ConfigureAwait(false))
            constraint = await command.ExecuteScalarAsync(ct).ConfigureAwait(false) as string;
        // No constraint: the partition takes every row of its table (a default partition without siblings).
        if (constraint is null)
            return new PartitionFilter(partition, "true", null);

        var columns = await IdColumnsAsync(connection, oid, ct).ConfigureAwait(false);
        var casts = new StringBuilder();
        for (var i = 0; i < table.IdColumns.Count; i++)
        {
            var name = table.IdColumns[i];
            if (!columns.TryGetValue(name, out var column))
                return new PartitionFilter(partition, null, $"the partition has no id column {PgIdentifier.Quote(name)}");
            var text = table.HasCompositeId ? $"(record_id::jsonb ->> {i})" : "record_id";
            casts.Append(i == 0 ? "" : ", ").Append($"{text}::{column.Type}");
            if (column.Collation is { } collation)
                casts.Append(" COLLATE ").Append(collation);
            casts.Append(" AS ").Append(PgIdentifier.Quote(name));
        }
        // Server-made text only: the constraint is pg_get_partition_constraintdef's, the types format_type's, names quoted.
        var predicate = $"COALESCE((SELECT {constraint} FROM (SELECT {casts}) AS r), false)";
        var probe = new NpgsqlCommand($"SELECT {predicate} FROM (SELECT NULL::text AS record_id) AS e", connection);
        await using (probe.ConfigureAwait(false))
        {
            try
            {
                await probe.ExecuteScalarAsync(ct).ConfigureAwait(false);
            }
            catch (PostgresException e)
            {
                return new PartitionFilter(partition, null, $"its constraint {constraint} cannot be evaluated on the id columns alone ({e.MessageText})");
            }
        }
        return new PartitionFilter(partition, predicate, null);
    }

    private static async Task<Dictionary<string, (string Type, string? Collation)>> IdColumnsAsync(NpgsqlConnection connection, uint oid, CancellationToken ct)
    {
        var columns = new Dictionary<string, (string, string?)>(StringComparer.Ordinal);
        var command = new NpgsqlCommand(IdColumnsSql, connection) { Parameters = { new NpgsqlParameter<uint> { TypedValue = oid, NpgsqlDbType = NpgsqlDbType.Oid } } };
        await using (command.ConfigureAwait(false))
        {
            var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                while (await reader.ReadAsync(ct).ConfigureAwait(false))
                    columns[reader.GetString(0)] = (reader.GetString(1), reader.IsDBNull(2) ? null : reader.GetString(2));
            }
        }
        return columns;
    }
}
