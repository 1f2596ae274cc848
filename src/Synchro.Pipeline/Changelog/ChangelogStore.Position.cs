using Npgsql;
using Synchro.Pipeline.Protocol;

namespace Synchro.Pipeline.Changelog;

// sync_wal_position.confirmed_lsn is BIGINT (the reference's type) and an LSN is an unsigned 64-bit offset:
// it is stored as the same 64 bits read as signed, unchecked((long)lsn.Value), and read back the same way.
// Invariant: stored LSNs are below 2^63 (8 EiB of WAL, which no server reaches), so the signed values
// order as the LSNs do and GREATEST keeps the later position.
internal static partial class ChangelogStore
{
    private const string LoadPositionSql = "SELECT confirmed_lsn FROM sync_wal_position WHERE slot_name = $1";

    private const string SavePositionSql = """
        INSERT INTO sync_wal_position AS p (slot_name, confirmed_lsn, updated_at)
        VALUES ($1, $2, now())
        ON CONFLICT (slot_name) DO UPDATE
        SET confirmed_lsn = GREATEST(p.confirmed_lsn, EXCLUDED.confirmed_lsn), updated_at = now()
        """;

    /// <summary>The position saved for <paramref name="slotName"/>, or null when none was.</summary>
    public static async Task<Lsn?> LoadPositionAsync(NpgsqlConnection connection, string slotName, CancellationToken ct)
    {
        var command = new NpgsqlCommand(LoadPositionSql, connection) { Parameters = { Parameter(slotName) } };
        await using (command.ConfigureAwait(false))
        {
            var value = await command.ExecuteScalarAsync(ct).ConfigureAwait(false);
            return value is long stored ? new Lsn(unchecked((ulong)stored)) : null;
        }
    }

    /// <summary>
    /// Saves <paramref name="lsn"/> as the position of <paramref name="slotName"/>, unless a later one is
    /// saved already: the position never moves back. <c>updated_at</c> is refreshed either way.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="lsn"/> is 2^63 or more, which the BIGINT column cannot order.</exception>
    public static async Task SavePositionAsync(NpgsqlConnection connection, string slotName, Lsn lsn, CancellationToken ct)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(lsn.Value, (ulong)long.MaxValue, nameof(lsn));
        await ExecuteAsync(connection, SavePositionSql, ct, Parameter(slotName), Parameter(unchecked((long)lsn.Value))).ConfigureAwait(false);
    }
}
