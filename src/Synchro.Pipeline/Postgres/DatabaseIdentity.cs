using Npgsql;

namespace Synchro.Pipeline.Postgres;

/// <summary>
/// Which database of which cluster a connection reached: the cluster's system identifier and the database's OID. Two
/// connection strings name the same database exactly when these are equal, however differently they are written
/// (host name or address, port, a unix socket, a pooler in between).
/// </summary>
/// <param name="SystemId">The cluster's system identifier (<c>pg_control_system()</c>, which any role may call).</param>
/// <param name="DatabaseOid">The OID of the connection's database.</param>
internal readonly record struct DatabaseIdentity(ulong SystemId, uint DatabaseOid)
{
    private const string IdentitySql = """
        SELECT (pg_catalog.pg_control_system()).system_identifier, d.oid
        FROM pg_catalog.pg_database d
        WHERE d.datname = pg_catalog.current_database()
        """;

    /// <summary>Reads the identity of the database <paramref name="connection"/> is open on.</summary>
    public static async Task<DatabaseIdentity> ReadAsync(NpgsqlConnection connection, CancellationToken ct)
    {
        var command = new NpgsqlCommand(IdentitySql, connection);
        await using (command.ConfigureAwait(false))
        {
            var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                await reader.ReadAsync(ct).ConfigureAwait(false);
                return new DatabaseIdentity(unchecked((ulong)reader.GetInt64(0)), reader.GetFieldValue<uint>(1));
            }
        }
    }
}
