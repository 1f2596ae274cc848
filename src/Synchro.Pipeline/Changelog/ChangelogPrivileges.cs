using Npgsql;
using NpgsqlTypes;
using Synchro.Pipeline.Postgres;

namespace Synchro.Pipeline.Changelog;

/// <summary>
/// Whether the changelog connection's role may do what the pipeline does to the sidecar tables: SELECT, INSERT, UPDATE and DELETE
/// on each, USAGE on their sequences and on the schema (docs/setup.md, roles). Shared by a start and <c>check</c>.
/// </summary>
internal static class ChangelogPrivileges
{
    private static readonly string[] s_tablePrivileges = ["SELECT", "INSERT", "UPDATE", "DELETE"];

    // The sidecar tables that exist in the schema, each with the privileges the role lacks on it and the sequences it owns
    // (a serial column's) that the role may not use.
    private const string PrivilegesSql = """
        SELECT t.name,
               ARRAY(SELECT p FROM pg_catalog.unnest(@privileges) AS p WHERE NOT pg_catalog.has_table_privilege(c.oid, p)),
               ARRAY(SELECT s.relname::text
                     FROM pg_catalog.pg_depend d
                     JOIN pg_catalog.pg_class s ON s.oid = d.objid AND s.relkind = 'S'
                     WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass
                       AND d.refobjid = c.oid AND d.deptype IN ('a', 'i')
                       -- CASE: the planner may test this before relkind, and it raises for anything but a sequence.
                       AND CASE WHEN s.relkind = 'S' THEN NOT pg_catalog.has_sequence_privilege(s.oid, 'USAGE') ELSE false END
                     ORDER BY s.relname)
        FROM pg_catalog.unnest(@tables) WITH ORDINALITY AS t(name, ord)
        JOIN pg_catalog.pg_namespace n ON n.nspname = @schema
        JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = t.name AND c.relkind IN ('r', 'p')
        ORDER BY t.ord
        """;

    private const string SchemaUsageSql = """
        SELECT pg_catalog.has_schema_privilege(n.oid, 'USAGE'), current_user::text
        FROM pg_catalog.pg_namespace n
        WHERE n.nspname = @schema
        """;

    /// <summary>What the role of <paramref name="connection"/> lacks on the sidecar tables that exist in <paramref name="schema"/>,
    /// with the grants that fix it; null when it lacks nothing (or the schema does not exist, which the schema check reports).</summary>
    public static async Task<string?> ProblemAsync(NpgsqlConnection connection, string schema, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(connection);
        bool schemaUsage;
        string role;
        var command = new NpgsqlCommand(SchemaUsageSql, connection);
        await using (command.ConfigureAwait(false))
        {
            command.Parameters.Add(new NpgsqlParameter<string>("schema", NpgsqlDbType.Text) { TypedValue = schema });
            var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                if (!await reader.ReadAsync(ct).ConfigureAwait(false))
                    return null;
                schemaUsage = reader.GetBoolean(0);
                role = reader.GetString(1);
            }
        }

        var lacking = new List<(string Table, string[] Privileges, string[] Sequences)>();
        command = new NpgsqlCommand(PrivilegesSql, connection);
        await using (command.ConfigureAwait(false))
        {
            command.Parameters.Add(new NpgsqlParameter<string>("schema", NpgsqlDbType.Text) { TypedValue = schema });
            command.Parameters.Add(new NpgsqlParameter<string[]>("tables", NpgsqlDbType.Array | NpgsqlDbType.Text) { TypedValue = [.. ChangelogSchema.TableNames] });
            command.Parameters.Add(new NpgsqlParameter<string[]>("privileges", NpgsqlDbType.Array | NpgsqlDbType.Text) { TypedValue = s_tablePrivileges });
            var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                while (await reader.ReadAsync(ct).ConfigureAwait(false))
                {
                    var privileges = reader.GetFieldValue<string[]>(1);
                    var sequences = reader.GetFieldValue<string[]>(2);
                    if (privileges.Length > 0 || sequences.Length > 0)
                        lacking.Add((reader.GetString(0), privileges, sequences));
                }
            }
        }

        if (schemaUsage && lacking.Count == 0)
            return null;
        return Describe(schema, role, schemaUsage, lacking);
    }

    private static string Describe(string schema, string role, bool schemaUsage, List<(string Table, string[] Privileges, string[] Sequences)> lacking)
    {
        var quotedSchema = PgIdentifier.Quote(schema);
        var quotedRole = PgIdentifier.Quote(role);
        var what = new List<string>();
        var grants = new List<string>();
        if (!schemaUsage)
        {
            what.Add($"USAGE on schema {quotedSchema}");
            grants.Add($"GRANT USAGE ON SCHEMA {quotedSchema} TO {quotedRole};");
        }
        // One GRANT per set of missing privileges, so that the statements grant exactly what is missing.
        foreach (var group in lacking.Where(l => l.Privileges.Length > 0).GroupBy(l => string.Join(", ", l.Privileges), StringComparer.Ordinal))
        {
            var tables = string.Join(", ", group.Select(l => PgIdentifier.QuoteQualified(schema, l.Table)));
            what.Add($"{group.Key} on {tables}");
            grants.Add($"GRANT {group.Key} ON {tables} TO {quotedRole};");
        }
        var sequences = lacking.SelectMany(l => l.Sequences).Select(s => PgIdentifier.QuoteQualified(schema, s)).ToList();
        if (sequences.Count > 0)
        {
            what.Add($"USAGE on the sequence{(sequences.Count == 1 ? "" : "s")} {string.Join(", ", sequences)}");
            grants.Add($"GRANT USAGE ON SEQUENCE {string.Join(", ", sequences)} TO {quotedRole};");
        }
        return $"Role {quotedRole} of the changelog connection lacks {string.Join("; ", what)}: the pipeline reads, writes and deletes rows of every "
            + $"sidecar table (the writer, compaction, replay-failures). As the tables' owner (the role that ran migrate): {string.Join(" ", grants)}";
    }
}
