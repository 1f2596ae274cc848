using Npgsql;
using Synchro.Pipeline.Registry;
using Synchro.Pipeline.Postgres;

namespace Synchro.Pipeline.Buckets;

/// <summary>Set-based reads of a registered table's current rows in the source database: one query per table per call.</summary>
/// <remarks>Identifiers are quoted; the id's type comes from the server's catalog. Not thread-safe (caches per table).</remarks>
internal sealed class SourceRows
{
    private const string IdTypeSql =
        "SELECT pg_catalog.format_type(a.atttypid, a.atttypmod) FROM pg_catalog.pg_attribute a WHERE a.attrelid = pg_catalog.to_regclass($1) AND a.attname = $2 AND NOT a.attisdropped";

    private const string ColumnsSql =
        "SELECT a.attname::text, a.atttypid::int8 FROM pg_catalog.pg_attribute a WHERE a.attrelid = pg_catalog.to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum";

    private readonly Dictionary<TableRegistration, string> _idTypes = [];

    /// <summary>
    /// For each of <paramref name="ids"/> that exists: the text of <paramref name="columns"/> (null for NULL), in that order.
    /// </summary>
    public async Task<Dictionary<string, string?[]>> LookupAsync(
        NpgsqlConnection connection, TableRegistration table, IReadOnlyList<string> columns, IReadOnlyCollection<string> ids, CancellationToken ct)
    {
        var result = new Dictionary<string, string?[]>(ids.Count, StringComparer.Ordinal);
        if (ids.Count == 0)
            return result;
        var idType = await IdTypeAsync(connection, table, ct).ConfigureAwait(false);
        var id = PgIdentifier.Quote(table.IdColumn);
        var selected = string.Concat(columns.Select(c => ", " + PgIdentifier.Quote(c) + "::text"));
        // Identifiers are quoted; the id type is the server's own format_type output.
        var sql = $"SELECT {id}::text{selected} FROM {PgIdentifier.QuoteQualified(table.Schema, table.Name)} WHERE {id} = ANY($1::{idType}[])";
        var command = new NpgsqlCommand(sql, connection) { Parameters = { new NpgsqlParameter<string[]> { TypedValue = [.. ids] } } };
        await using (command.ConfigureAwait(false))
        {
            var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                while (await reader.ReadAsync(ct).ConfigureAwait(false))
                {
                    var values = new string?[columns.Count];
                    for (var i = 0; i < values.Length; i++)
                        values[i] = reader.IsDBNull(i + 1) ? null : reader.GetString(i + 1);
                    result[reader.GetString(0)] = values;
                }
            }
        }
        return result;
    }

    /// <summary>Every column of the table, in column order, with its type OID.</summary>
    public static async Task<(string[] Names, uint[] TypeOids)> ColumnsAsync(NpgsqlConnection connection, TableRegistration table, CancellationToken ct)
    {
        var names = new List<string>();
        var types = new List<uint>();
        var command = new NpgsqlCommand(ColumnsSql, connection) { Parameters = { new NpgsqlParameter<string> { TypedValue = PgIdentifier.QuoteQualified(table.Schema, table.Name) } } };
        await using (command.ConfigureAwait(false))
        {
            var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                while (await reader.ReadAsync(ct).ConfigureAwait(false))
                {
                    names.Add(reader.GetString(0));
                    types.Add((uint)reader.GetInt64(1));
                }
            }
        }
        if (names.Count == 0)
            throw new InvalidOperationException($"Table {table} was not found in the source database.");
        return ([.. names], [.. types]);
    }

    private async Task<string> IdTypeAsync(NpgsqlConnection connection, TableRegistration table, CancellationToken ct)
    {
        if (_idTypes.TryGetValue(table, out var type))
            return type;
        var command = new NpgsqlCommand(IdTypeSql, connection)
        {
            Parameters =
            {
                new NpgsqlParameter<string> { TypedValue = PgIdentifier.QuoteQualified(table.Schema, table.Name) },
                new NpgsqlParameter<string> { TypedValue = table.IdColumn },
            },
        };
        await using (command.ConfigureAwait(false))
        {
            type = await command.ExecuteScalarAsync(ct).ConfigureAwait(false) as string
                ?? throw new InvalidOperationException($"Column {table.IdColumn} of {table} was not found in the source database.");
        }
        _idTypes[table] = type;
        return type;
    }
}
