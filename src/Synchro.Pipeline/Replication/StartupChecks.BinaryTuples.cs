using Npgsql;
using NpgsqlTypes;
using Synchro.Pipeline.Decoding;
using Synchro.Pipeline.Postgres;

namespace Synchro.Pipeline.Replication;

internal static partial class StartupChecks
{
    // pgoutput accepts the binary option from PostgreSQL 14 on.
    private const int MinBinaryServerMajorVersion = 14;

    private const string BinaryColumnTypesSql = """
        SELECT t.ord::int, a.atttypid, pg_catalog.format_type(a.atttypid, a.atttypmod)
        FROM ROWS FROM (pg_catalog.unnest(@schemas), pg_catalog.unnest(@names), pg_catalog.unnest(@columns)) WITH ORDINALITY AS t(schema_name, table_name, column_name, ord)
        JOIN pg_catalog.pg_namespace n ON n.nspname = t.schema_name
        JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = t.table_name
        JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attname = t.column_name AND a.attnum > 0 AND NOT a.attisdropped
        ORDER BY t.ord
        """;

    /// <summary>
    /// Binary tuple mode: the server must be PostgreSQL 14 or later, and every column converted to text (id, owner,
    /// bucket, parent) must be of a type <see cref="BinaryValueText"/> converts. Run after <see cref="RunAsync"/>,
    /// which reports missing tables and columns.
    /// </summary>
    /// <param name="connection">An open connection to the source database.</param>
    /// <param name="columns">The converted columns, by schema and table.</param>
    /// <param name="ct">Cancels the check.</param>
    /// <exception cref="WalPipelineConfigurationException">One or more problems; the exception lists all of them.</exception>
    public static async Task CheckBinaryTuplesAsync(
        NpgsqlConnection connection,
        IReadOnlyList<(string Schema, string Table, string Column)> columns,
        CancellationToken ct)
    {
        var errors = new List<string>();
        var version = connection.PostgreSqlVersion;
        if (version.Major < MinBinaryServerMajorVersion)
        {
            errors.Add($"BinaryTupleMode needs PostgreSQL 14 or later (pgoutput's binary option); the server is {version}. "
                + "Turn BinaryTupleMode off, or upgrade the server.");
        }

        if (columns.Count > 0)
        {
            var command = new NpgsqlCommand(BinaryColumnTypesSql, connection);
            await using (command.ConfigureAwait(false))
            {
                command.Parameters.Add(new NpgsqlParameter<string[]>("schemas", NpgsqlDbType.Array | NpgsqlDbType.Text) { TypedValue = [.. columns.Select(c => c.Schema)] });
                command.Parameters.Add(new NpgsqlParameter<string[]>("names", NpgsqlDbType.Array | NpgsqlDbType.Text) { TypedValue = [.. columns.Select(c => c.Table)] });
                command.Parameters.Add(new NpgsqlParameter<string[]>("columns", NpgsqlDbType.Array | NpgsqlDbType.Text) { TypedValue = [.. columns.Select(c => c.Column)] });
                var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
                await using (reader.ConfigureAwait(false))
                {
                    while (await reader.ReadAsync(ct).ConfigureAwait(false))
                    {
                        var (schema, table, column) = columns[reader.GetInt32(0) - 1];
                        if (BinaryValueText.For(reader.GetFieldValue<uint>(1)) == BinaryColumnFormat.Unsupported)
                            errors.Add(BinaryValueText.UnsupportedColumn(PgIdentifier.QuoteQualified(schema, table), column, reader.GetString(2)));
                    }
                }
            }
        }

        if (errors.Count > 0)
            throw new WalPipelineConfigurationException(errors);
    }
}
