using Npgsql;
using Synchro.Pipeline.Protocol;

namespace Synchro.Pipeline.Changelog;

// sync_transaction_skips: a one-shot request to skip the source transaction committed at commit_lsn (stored as the
// same 64 bits read as signed, like sync_wal_position). The writer deletes it in the transaction that skips it.
internal static partial class ChangelogStore
{
    private const string RequestSkipSql = """
        INSERT INTO sync_transaction_skips (slot_name, commit_lsn) VALUES ($1, $2)
        ON CONFLICT (slot_name) DO UPDATE SET commit_lsn = EXCLUDED.commit_lsn, requested_at = pg_catalog.now()
        """;

    private const string LoadSkipSql = "SELECT commit_lsn FROM sync_transaction_skips WHERE slot_name = $1";

    private const string DeleteSkipSql = "DELETE FROM sync_transaction_skips WHERE slot_name = $1 AND commit_lsn = $2";

    /// <summary>Records that the transaction committed at <paramref name="commitLsn"/> is to be skipped (replacing an earlier request).</summary>
    public static Task RequestSkipAsync(NpgsqlConnection connection, string slotName, Lsn commitLsn, CancellationToken ct)
        => ExecuteAsync(connection, RequestSkipSql, ct, Parameter(slotName), Parameter(unchecked((long)commitLsn.Value)));

    /// <summary>The commit LSN of the transaction to skip, or null when none is requested.</summary>
    public static async Task<Lsn?> LoadSkipAsync(NpgsqlConnection connection, string slotName, CancellationToken ct)
    {
        var command = new NpgsqlCommand(LoadSkipSql, connection) { Parameters = { Parameter(slotName) } };
        await using (command.ConfigureAwait(false))
            return await command.ExecuteScalarAsync(ct).ConfigureAwait(false) is long stored ? new Lsn(unchecked((ulong)stored)) : null;
    }

    /// <summary>Removes the request to skip the transaction committed at <paramref name="commitLsn"/> (it was skipped).</summary>
    public static Task DeleteSkipAsync(NpgsqlConnection connection, string slotName, Lsn commitLsn, CancellationToken ct)
        => ExecuteAsync(connection, DeleteSkipSql, ct, Parameter(slotName), Parameter(unchecked((long)commitLsn.Value)));
}
