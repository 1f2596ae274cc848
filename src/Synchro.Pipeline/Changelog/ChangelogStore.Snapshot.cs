using Npgsql;
using Synchro.Pipeline.Protocol;
using Synchro.Pipeline.Replication;

namespace Synchro.Pipeline.Changelog;

// The initial snapshot's durable state lives in the reference's own position table, so no column or table is added:
// a slot's position row with confirmed_lsn 0 (an LSN no transaction ends at) means "this pipeline is creating the slot
// and has not finished loading its snapshot". The row is written, committed, before the slot is created, and the load's
// single transaction replaces it with the slot's consistent point together with every edge it wrote. So a slot found
// with a 0 row was left by a start that died before its load committed: it is dropped and created again.
internal static partial class ChangelogStore
{
    /// <summary>The value of <c>sync_wal_position.confirmed_lsn</c> that marks a slot whose initial snapshot is pending.</summary>
    public const long SnapshotPendingPosition = 0;

    // Bound to the source the slot is about to be created on (invariant 8); the load's position keeps that binding.
    private const string MarkSnapshotPendingSql = """
        INSERT INTO sync_wal_position AS p (slot_name, confirmed_lsn, updated_at, source_system_id, source_timeline, source_database_oid, source_database)
        VALUES ($1, 0, pg_catalog.now(), $2, $3, $4, $5)
        ON CONFLICT (slot_name) DO UPDATE
        SET confirmed_lsn = 0, updated_at = pg_catalog.now(), source_system_id = EXCLUDED.source_system_id, source_timeline = EXCLUDED.source_timeline,
            source_database_oid = EXCLUDED.source_database_oid, source_database = EXCLUDED.source_database
        """;

    // Not GREATEST: the slot is new, so a position left by an earlier slot of the same name means nothing for it.
    private const string SetSnapshotPositionSql = """
        INSERT INTO sync_wal_position AS p (slot_name, confirmed_lsn, updated_at)
        VALUES ($1, $2, pg_catalog.now())
        ON CONFLICT (slot_name) DO UPDATE SET confirmed_lsn = EXCLUDED.confirmed_lsn, updated_at = pg_catalog.now()
        """;

    // Invariant 11: the load writes edges without changelog rows, so a client that read the changelog before it (or holds
    // state from before a reload) would never learn of them. The horizon of every bucket (bucket id '', which no bucket
    // has) moves past everything committed, so each such client resyncs. On the writer's session: no seq can fall below it later.
    private const string RaiseLoadHorizonSql = """
        INSERT INTO sync_bucket_horizons AS h (bucket_id, horizon_seq)
        VALUES ('', pg_catalog.nextval(pg_catalog.pg_get_serial_sequence('sync_changelog', 'seq')))
        ON CONFLICT (bucket_id) DO UPDATE SET horizon_seq = GREATEST(h.horizon_seq, EXCLUDED.horizon_seq), updated_at = pg_catalog.now()
        """;

    private const string DeleteTableEdgesSql = "DELETE FROM sync_bucket_edges WHERE table_name = ANY($1::text[])";

    /// <summary>Records, durably once the caller commits, that the slot is about to be created on <paramref name="source"/> and its snapshot loaded.</summary>
    public static Task MarkSnapshotPendingAsync(NpgsqlConnection connection, string slotName, SourceIdentity source, CancellationToken ct)
        => ExecuteAsync(connection, MarkSnapshotPendingSql, ct, WithSource(source, Parameter(slotName)));

    /// <summary>Sets the slot's position to <paramref name="consistentPoint"/>, replacing the pending marker (or any earlier position).</summary>
    public static Task SetSnapshotPositionAsync(NpgsqlConnection connection, string slotName, Lsn consistentPoint, CancellationToken ct)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(consistentPoint.Value, (ulong)long.MaxValue, nameof(consistentPoint));
        ArgumentOutOfRangeException.ThrowIfEqual(consistentPoint.Value, 0UL, nameof(consistentPoint));
        return ExecuteAsync(connection, SetSnapshotPositionSql, ct, Parameter(slotName), Parameter(unchecked((long)consistentPoint.Value)));
    }

    /// <summary>Raises the horizon of every bucket past every changelog row committed so far (in the load's transaction).</summary>
    public static Task RaiseLoadHorizonAsync(NpgsqlConnection connection, CancellationToken ct) => ExecuteAsync(connection, RaiseLoadHorizonSql, ct);

    /// <summary>Removes every edge of the tables named <paramref name="tableNames"/> (changelog names).</summary>
    public static Task DeleteTableEdgesAsync(NpgsqlConnection connection, string[] tableNames, CancellationToken ct)
        => ExecuteAsync(connection, DeleteTableEdgesSql, ct, Parameter(tableNames));
}
