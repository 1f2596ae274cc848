using Npgsql;
using Synchro.Pipeline.Protocol;
using Synchro.Pipeline.Replication;

namespace Synchro.Pipeline.Changelog;

// sync_wal_position.confirmed_lsn is BIGINT (the reference's type) and an LSN is an unsigned 64-bit offset:
// it is stored as the same 64 bits read as signed, unchecked((long)lsn.Value), and read back the same way.
// Invariant: stored LSNs are below 2^63 (8 EiB of WAL, which no server reaches), so the signed values
// order as the LSNs do and GREATEST keeps the later position. The system identifier is stored the same way.
// Invariant 8: the source columns are written with the position, by the same statement, from values read once per run.
internal static partial class ChangelogStore
{
    // Through to_jsonb, so it also reads a table the binding columns were not added to yet (check and status may run
    // against a changelog an older version migrated); the binding is all four columns or none.
    private const string LoadPositionSql = """
        SELECT p.confirmed_lsn, (j ->> 'source_system_id')::bigint, (j ->> 'source_timeline')::bigint,
               (j ->> 'source_database_oid')::bigint, j ->> 'source_database'
        FROM sync_wal_position p, LATERAL pg_catalog.to_jsonb(p) AS j
        WHERE p.slot_name = $1
        """;

    private const string SavePositionSql = """
        INSERT INTO sync_wal_position AS p (slot_name, confirmed_lsn, updated_at, source_system_id, source_timeline, source_database_oid, source_database)
        VALUES ($1, $2, pg_catalog.now(), $3, $4, $5, $6)
        ON CONFLICT (slot_name) DO UPDATE
        SET confirmed_lsn = GREATEST(p.confirmed_lsn, EXCLUDED.confirmed_lsn), updated_at = pg_catalog.now(),
            source_system_id = EXCLUDED.source_system_id, source_timeline = EXCLUDED.source_timeline,
            source_database_oid = EXCLUDED.source_database_oid, source_database = EXCLUDED.source_database
        """;

    /// <summary>The position saved for <paramref name="slotName"/>, or null when none was.</summary>
    public static async Task<Lsn?> LoadPositionAsync(NpgsqlConnection connection, string slotName, CancellationToken ct)
        => (await LoadPersistedPositionAsync(connection, slotName, ct).ConfigureAwait(false))?.Position;

    /// <summary>The row saved for <paramref name="slotName"/> with the source it is bound to, or null when there is none.</summary>
    public static async Task<PersistedPosition?> LoadPersistedPositionAsync(NpgsqlConnection connection, string slotName, CancellationToken ct)
    {
        var command = new NpgsqlCommand(LoadPositionSql, connection) { Parameters = { Parameter(slotName) } };
        await using (command.ConfigureAwait(false))
        {
            var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                if (!await reader.ReadAsync(ct).ConfigureAwait(false))
                    return null;
                var position = new Lsn(unchecked((ulong)reader.GetInt64(0)));
                if (reader.IsDBNull(1) || reader.IsDBNull(2) || reader.IsDBNull(3) || reader.IsDBNull(4))
                    return new PersistedPosition(position, null);
                var source = new SourceIdentity(
                    unchecked((ulong)reader.GetInt64(1)), checked((uint)reader.GetInt64(2)), checked((uint)reader.GetInt64(3)), reader.GetString(4));
                return new PersistedPosition(position, source);
            }
        }
    }

    /// <summary>
    /// Saves <paramref name="lsn"/> as the position of <paramref name="slotName"/>, unless a later one is saved already
    /// (the position never moves back), and binds the row to <paramref name="source"/>. <c>updated_at</c> is refreshed either way.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="lsn"/> is 2^63 or more, which the BIGINT column cannot order.</exception>
    public static async Task SavePositionAsync(NpgsqlConnection connection, string slotName, SourceIdentity source, Lsn lsn, CancellationToken ct)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(lsn.Value, (ulong)long.MaxValue, nameof(lsn));
        await ExecuteAsync(connection, SavePositionSql, ct, WithSource(source, Parameter(slotName), Parameter(unchecked((long)lsn.Value)))).ConfigureAwait(false);
    }

    /// <summary><paramref name="leading"/>, then the four source columns' parameters, in the order the statements write them.</summary>
    private static NpgsqlParameter[] WithSource(SourceIdentity source, params ReadOnlySpan<NpgsqlParameter> leading) =>
    [
        .. leading,
        Parameter(unchecked((long)source.SystemId)), Parameter((long)source.Timeline), Parameter((long)source.DatabaseOid), Parameter(source.Database),
    ];
}
