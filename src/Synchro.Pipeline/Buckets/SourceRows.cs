using Npgsql;
using NpgsqlTypes;
using Synchro.Pipeline.Registry;
using Synchro.Pipeline.Postgres;

namespace Synchro.Pipeline.Buckets;

/// <summary>Set-based reads of a registered table's current rows in the source database: one query per table per call.</summary>
/// <remarks>
/// Rows are found by record id (<see cref="TableRegistration.IdColumns"/>): by one index probe per id when an index leads with the
/// id columns and none may be NULL (<see cref="KeyLookup"/>, whatever the table's statistics say); otherwise a one-column id by
/// <c>id = ANY($1)</c>, an id of several columns by joining the table to the arrays of their values (<c>unnest</c>), each
/// compared in the column's own type, and a column that may be NULL matched with <c>IS NOT DISTINCT FROM</c> (a composite id
/// can hold NULL). Identifiers are quoted; the id columns' types come from the server's catalog. Not thread-safe (caches per table).
/// </remarks>
internal sealed class SourceRows
{
    private const string IdTypesSql = """
        SELECT a.attname::text, pg_catalog.format_type(a.atttypid, a.atttypmod), a.attnotnull
        FROM pg_catalog.pg_attribute a WHERE a.attrelid = pg_catalog.to_regclass($1) AND a.attname = ANY($2) AND a.attnum > 0 AND NOT a.attisdropped
        """;

    private const string ColumnsSql =
        "SELECT a.attname::text, a.atttypid::int8 FROM pg_catalog.pg_attribute a WHERE a.attrelid = pg_catalog.to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum";

    // Per table: its id columns as lookup keys (SQL type, NOT NULL), and whether ids are looked up by index probes (KeyLookup).
    private readonly Dictionary<TableRegistration, (KeyLookup.Key[] Keys, bool Probe)> _ids = [];

    /// <summary>
    /// For each of <paramref name="ids"/> (record ids of <paramref name="table"/>) that exists: the text of
    /// <paramref name="columns"/> (null for NULL), in that order. An id that is not one of the table's is not found.
    /// </summary>
    public async Task<Dictionary<string, string?[]>> LookupAsync(
        NpgsqlConnection connection, TableRegistration table, IReadOnlyList<string> columns, IReadOnlyCollection<string> ids, CancellationToken ct)
    {
        var result = new Dictionary<string, string?[]>(ids.Count, StringComparer.Ordinal);
        if (ids.Count == 0)
            return result;
        var (idKeys, probe) = await IdKeysAsync(connection, table, ct).ConfigureAwait(false);
        var keys = idKeys.Length;
        var from = PgIdentifier.QuoteQualified(table.Schema, table.Name);
        var command = new NpgsqlCommand { Connection = connection };
        await using (command.ConfigureAwait(false))
        {
            if (keys == 1 && !probe)
            {
                var id = PgIdentifier.Quote(table.IdColumns[0]);
                var selected = string.Concat(columns.Select(c => ", " + PgIdentifier.Quote(c) + "::text"));
                // Identifiers are quoted; the id type is the server's own format_type output.
                command.CommandText = $"SELECT {id}::text{selected} FROM {from} WHERE {id} = ANY($1::{idKeys[0].Type}[])";
                command.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = [.. ids] });
            }
            else
            {
                var values = new string?[keys][];
                for (var k = 0; k < keys; k++)
                    values[k] = new string?[ids.Count];
                var row = 0;
                foreach (var recordId in ids)
                {
                    // Only ids this table can have: another shape names no row of it.
                    string?[] parts;
                    if (keys == 1)
                        parts = [recordId];
                    else if (!table.TryParseRecordId(recordId, out parts))
                        continue;
                    for (var k = 0; k < keys; k++)
                        values[k][row] = parts[k];
                    row++;
                }
                if (row == 0)
                    return result;
                command.CommandText = KeyLookup.Select(table.IdColumns.Concat(columns).Select(c => "t." + PgIdentifier.Quote(c) + "::text"), from,
                    idKeys, probe);
                for (var k = 0; k < keys; k++)
                    command.Parameters.Add(new NpgsqlParameter<string?[]> { TypedValue = values[k][..row], NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
            }
            var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                var id = new string?[keys];
                while (await reader.ReadAsync(ct).ConfigureAwait(false))
                {
                    for (var k = 0; k < keys; k++)
                        id[k] = reader.IsDBNull(k) ? null : reader.GetString(k);
                    var found = new string?[columns.Count];
                    for (var i = 0; i < found.Length; i++)
                        found[i] = reader.IsDBNull(keys + i) ? null : reader.GetString(keys + i);
                    result[keys == 1 ? id[0]! : table.FormatRecordId(id)] = found;
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

    /// <summary>
    /// <paramref name="table"/>'s id columns as lookup keys, read from the catalog once, and whether its rows are looked up by one
    /// index probe per id (<see cref="KeyLookup"/>): an index leads with its id columns, all NOT NULL.
    /// </summary>
    private async Task<(KeyLookup.Key[] Keys, bool Probe)> IdKeysAsync(NpgsqlConnection connection, TableRegistration table, CancellationToken ct)
    {
        if (_ids.TryGetValue(table, out var known))
            return known;
        var found = new Dictionary<string, (string Type, bool NotNull)>(StringComparer.Ordinal);
        var command = new NpgsqlCommand(IdTypesSql, connection)
        {
            Parameters =
            {
                new NpgsqlParameter<string> { TypedValue = PgIdentifier.QuoteQualified(table.Schema, table.Name) },
                new NpgsqlParameter<string[]> { TypedValue = [.. table.IdColumns] },
            },
        };
        await using (command.ConfigureAwait(false))
        {
            var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                while (await reader.ReadAsync(ct).ConfigureAwait(false))
                    found[reader.GetString(0)] = (reader.GetString(1), reader.GetBoolean(2));
            }
        }
        var keys = new KeyLookup.Key[table.IdColumns.Count];
        for (var k = 0; k < keys.Length; k++)
        {
            var column = table.IdColumns[k];
            keys[k] = found.TryGetValue(column, out var type)
                ? new KeyLookup.Key(column, type.Type, type.NotNull)
                : throw new InvalidOperationException($"Column {column} of {table} was not found in the source database.");
        }
        var probe = keys.All(key => key.NotNull)
            && await KeyLookup.HasLeadingIndexAsync(connection, PgIdentifier.QuoteQualified(table.Schema, table.Name), table.IdColumns, ct).ConfigureAwait(false);
        _ids[table] = (keys, probe);
        return (keys, probe);
    }
}
