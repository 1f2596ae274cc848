using Npgsql;

namespace Synchro.Pipeline.Changelog;

// sync_prepared_transactions: a prepared transaction's decoded changes in the spill format, in numbered chunks
// (each whole records of one stream, read back in order by one reader), so storing and reading back stay bounded in memory.
internal static partial class ChangelogStore
{
    private const string InsertPreparedChunkSql = "INSERT INTO sync_prepared_transactions (slot_name, gid, chunk, data) VALUES ($1, $2, $3, $4)";

    private const string LoadPreparedChunkSql = "SELECT data FROM sync_prepared_transactions WHERE slot_name = $1 AND gid = $2 AND chunk = $3";

    private const string DeletePreparedSql = "DELETE FROM sync_prepared_transactions WHERE slot_name = $1 AND gid = $2";

    /// <summary>Stores chunk <paramref name="chunk"/> of prepared transaction <paramref name="gid"/>.</summary>
    public static Task SavePreparedChunkAsync(NpgsqlConnection connection, string slotName, string gid, int chunk, ReadOnlyMemory<byte> data, CancellationToken ct)
        => ExecuteAsync(connection, InsertPreparedChunkSql, ct, Parameter(slotName), Parameter(gid), Parameter(chunk),
            new NpgsqlParameter<ReadOnlyMemory<byte>> { TypedValue = data, NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.Bytea });

    /// <summary>Chunk <paramref name="chunk"/> of prepared transaction <paramref name="gid"/>, or null past its last.</summary>
    public static async Task<byte[]?> LoadPreparedChunkAsync(NpgsqlConnection connection, string slotName, string gid, int chunk, CancellationToken ct)
    {
        var command = new NpgsqlCommand(LoadPreparedChunkSql, connection) { Parameters = { Parameter(slotName), Parameter(gid), Parameter(chunk) } };
        await using (command.ConfigureAwait(false))
            return await command.ExecuteScalarAsync(ct).ConfigureAwait(false) as byte[];
    }

    /// <summary>Deletes every chunk of prepared transaction <paramref name="gid"/>; returns how many there were.</summary>
    public static async Task<int> DeletePreparedAsync(NpgsqlConnection connection, string slotName, string gid, CancellationToken ct)
    {
        var command = new NpgsqlCommand(DeletePreparedSql, connection) { Parameters = { Parameter(slotName), Parameter(gid) } };
        await using (command.ConfigureAwait(false))
            return await command.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
    }
}
