using Npgsql;
using Synchro.Pipeline.Changelog;
using Synchro.Pipeline.Tests.Infrastructure;

namespace Synchro.Pipeline.Tests.Changelog;

/// <summary>Fresh migrated databases and small queries over the sidecar tables.</summary>
internal static class SidecarDatabase
{

    /// <summary>A new database with the sidecar tables; returns its connection string.</summary>
    public static async Task<string> CreateAsync(PostgresServerFixture postgres, string prefix)
    {
        var connectionString = await postgres.CreateDatabaseAsync(prefix);
        await using var connection = await OpenAsync(connectionString);
        await ChangelogSchema.EnsureAsync(connection);
        return connectionString;
    }

    public static async Task<NpgsqlConnection> OpenAsync(string connectionString)
    {
        var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        return connection;
    }

    public static async Task<long> CountAsync(NpgsqlConnection connection, string table)
    {
        Assert.Contains(table, ChangelogSchema.TableNames);
        return (long)(await ScalarAsync(connection, $"SELECT count(*) FROM {table}"))!;
    }

    public static async Task<object?> ScalarAsync(NpgsqlConnection connection, string sql, params object[] parameters)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        foreach (var parameter in parameters)
            command.Parameters.Add(new NpgsqlParameter { Value = parameter });
        return await command.ExecuteScalarAsync();
    }

    public static async Task ExecuteAsync(NpgsqlConnection connection, string sql)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }

    /// <summary>Every row of a query, each rendered as its columns joined by <c>|</c>.</summary>
    public static async Task<List<string>> RowsAsync(NpgsqlConnection connection, string sql)
    {
        var rows = new List<string>();
        await using var command = new NpgsqlCommand(sql, connection);
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            var values = new string[reader.FieldCount];
            for (var i = 0; i < values.Length; i++)
                values[i] = reader.IsDBNull(i) ? "NULL" : Convert.ToString(reader.GetValue(i), System.Globalization.CultureInfo.InvariantCulture)!;
            rows.Add(string.Join('|', values));
        }
        return rows;
    }
}
