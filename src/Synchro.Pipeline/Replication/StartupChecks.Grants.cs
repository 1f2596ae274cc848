using Npgsql;
using Synchro.Pipeline.Postgres;

namespace Synchro.Pipeline.Replication;

// SELECT on the registered tables: the initial snapshot, parent lookups, unchanged TOAST values and SQL rules read them as this role.
internal static partial class StartupChecks
{
    private const string GrantsSql = """
        SELECT t.ord::int,
               pg_catalog.has_schema_privilege(n.oid, 'USAGE'),
               pg_catalog.has_table_privilege(c.oid, 'SELECT')
        FROM ROWS FROM (pg_catalog.unnest(@schemas), pg_catalog.unnest(@names)) WITH ORDINALITY AS t(schema_name, table_name, ord)
        JOIN pg_catalog.pg_namespace n ON n.nspname = t.schema_name
        JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = t.table_name
        ORDER BY t.ord
        """;

    /// <summary>One error naming every registered table the role may not read, with the grants that fix it.</summary>
    private static async Task CheckGrantsAsync(NpgsqlConnection connection, string role, List<CheckableTable> tables, List<string> errors, CancellationToken ct)
    {
        if (tables.Count == 0)
            return;
        var schemas = new List<string>();
        var unreadable = new List<string>();
        var command = new NpgsqlCommand(GrantsSql, connection);
        await using (command.ConfigureAwait(false))
        {
            AddTableNames(command, tables);
            var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                while (await reader.ReadAsync(ct).ConfigureAwait(false))
                {
                    var table = tables[reader.GetInt32(0) - 1];
                    if (!reader.GetBoolean(1) && !schemas.Contains(table.Table.Schema, StringComparer.Ordinal))
                        schemas.Add(table.Table.Schema);
                    if (!reader.GetBoolean(2))
                        unreadable.Add(table.QuotedName);
                }
            }
        }

        if (schemas.Count == 0 && unreadable.Count == 0)
            return;
        var quotedRole = PgIdentifier.Quote(role);
        var missing = new List<string>(2);
        var fix = new List<string>(2);
        if (unreadable.Count > 0)
        {
            missing.Add($"SELECT on {QuotedList(unreadable)}");
            fix.Add($"GRANT SELECT ON {QuotedList(unreadable)} TO {quotedRole};");
        }
        if (schemas.Count > 0)
        {
            var quoted = QuotedList(schemas.Select(PgIdentifier.Quote));
            missing.Add($"USAGE on schema {quoted}");
            fix.Add($"GRANT USAGE ON SCHEMA {quoted} TO {quotedRole};");
        }
        errors.Add($"Role {quotedRole} lacks {string.Join(" and ", missing)}: the initial snapshot, parent lookups, unchanged TOAST values and SQL bucket rules "
            + $"read the registered tables as this role. As their owner: {string.Join(" ", fix)}");
    }
}
