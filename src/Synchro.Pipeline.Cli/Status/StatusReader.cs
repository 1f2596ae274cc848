using System.Globalization;
using Npgsql;
using NpgsqlTypes;
using Synchro.Pipeline.Changelog;
using Synchro.Pipeline.Cli.Database;
using Synchro.Pipeline.Protocol;

namespace Synchro.Pipeline.Cli.Status;

/// <summary>Reads the slot from the source database and the sidecar tables from the changelog database; read-only, every value a parameter.</summary>
internal static class StatusReader
{
    private const string ServerSql = "SELECT pg_catalog.current_setting('server_version_num')::int, pg_catalog.pg_is_in_recovery()";

    // One statement, so the lag and the retained WAL are measured against the same current position.
    // {0}: the columns PostgreSQL 13 (wal_status, safe_wal_size), 14 (two_phase) and 17 (invalidation_reason, inactive_since,
    // failover, synced) added, or NULLs before them.
    private const string SlotSqlFormat = """
        WITH server AS (
            SELECT CASE WHEN pg_catalog.pg_is_in_recovery() THEN pg_catalog.pg_last_wal_replay_lsn() ELSE pg_catalog.pg_current_wal_lsn() END AS lsn
        )
        SELECT server.lsn, s.slot_name IS NOT NULL, s.slot_type, s.plugin::text, s.database::text, s.active, s.active_pid,
               {0},
               s.restart_lsn, s.confirmed_flush_lsn,
               pg_catalog.pg_wal_lsn_diff(server.lsn, s.confirmed_flush_lsn)::bigint,
               pg_catalog.pg_wal_lsn_diff(server.lsn, s.restart_lsn)::bigint,
               r.state, r.reply_time, pg_catalog.date_part('epoch', r.flush_lag),
               (SELECT setting::bigint FROM pg_catalog.pg_settings WHERE name = 'max_slot_wal_keep_size')
        FROM server
        LEFT JOIN pg_catalog.pg_replication_slots s ON s.slot_name = @slot
        LEFT JOIN pg_catalog.pg_stat_replication r ON r.pid = s.active_pid
        """;

    private const string Columns17 = "s.wal_status, s.safe_wal_size, s.two_phase, s.invalidation_reason, s.inactive_since, s.failover, s.synced";
    private const string Columns14 = "s.wal_status, s.safe_wal_size, s.two_phase" + Before17;
    private const string Columns13 = "s.wal_status, s.safe_wal_size, NULL::boolean" + Before17;
    private const string ColumnsBefore13 = "NULL::text, NULL::bigint, NULL::boolean" + Before17;
    private const string Before17 = ", NULL::text, NULL::timestamptz, NULL::boolean, NULL::boolean";

    // The default SlotSafeWalSizeWarning is a quarter of max_slot_wal_keep_size (WalPipelineOptions).
    private const long DefaultWarningDivisor = 4;

    private const string SidecarTablesSql = "SELECT t FROM pg_catalog.unnest(@tables) AS t WHERE pg_catalog.to_regclass(t) IS NULL";

    // Cheap whatever the changelog's size: primary-key and created_at index lookups, catalog reads. Only the
    // rule failures are counted, and that table holds failures, which are meant to be few.
    private const string ChangelogSql = """
        SELECT p.confirmed_lsn, p.updated_at,
               (SELECT pg_catalog.max(seq) FROM sync_changelog),
               (SELECT created_at FROM sync_changelog ORDER BY seq DESC LIMIT 1),
               (SELECT CASE WHEN c.reltuples < 0 THEN NULL ELSE c.reltuples::bigint END FROM pg_catalog.pg_class c WHERE c.oid = pg_catalog.to_regclass('sync_changelog')),
               pg_catalog.pg_total_relation_size(pg_catalog.to_regclass('sync_changelog')),
               (SELECT pg_catalog.count(*) FROM sync_rule_failures),
               (SELECT pg_catalog.max(created_at) FROM sync_rule_failures)
        FROM (SELECT 1) AS one
        LEFT JOIN sync_wal_position p ON p.slot_name = @slot
        """;

    // The tables the status reads; the changelog's own migration creates them all at once.
    private static readonly string[] s_sidecarTables = ["sync_changelog", "sync_wal_position", "sync_rule_failures"];

    /// <summary>The status of <paramref name="slot"/>; <paramref name="safeWalSizeWarning"/> is the <c>SlotSafeWalSizeWarning</c> setting (null for its default), below which the verdict warns.</summary>
    public static async Task<StatusReport> ReadAsync(string sourceConnectionString, string changelogConnectionString, string slot, long? safeWalSizeWarning, CancellationToken ct)
    {
        (string Lsn, bool InRecovery, SlotReport Slot) source;
        var sourceDatabase = NpgsqlDataSource.Create(sourceConnectionString);
        await using (sourceDatabase.ConfigureAwait(false))
            source = await ReadSlotAsync(sourceDatabase, slot, safeWalSizeWarning, ct).ConfigureAwait(false);

        ChangelogReport changelog;
        // The sidecar tables by their plain names, found in the changelog schema only, as the pipeline's sessions find them.
        var changelogDatabase = NpgsqlDataSource.Create(ChangelogSchema.PinSearchPath(changelogConnectionString));
        await using (changelogDatabase.ConfigureAwait(false))
            changelog = await ReadChangelogAsync(changelogDatabase, DatabaseTarget.Describe(changelogConnectionString), slot, source.Slot.ConfirmedFlushLsn, ct).ConfigureAwait(false);
        if (changelog.PersistedLsn is not null)
            changelog = await CheckPositionAsync(changelog, sourceConnectionString, changelogConnectionString, slot, ct).ConfigureAwait(false);

        return new StatusReport
        {
            Verdict = StatusVerdict.Of(slot, source.Slot, changelog, DateTimeOffset.UtcNow),
            SlotName = slot,
            Source = DatabaseTarget.Describe(sourceConnectionString),
            ServerWalLsn = source.Lsn,
            InRecovery = source.InRecovery,
            Slot = source.Slot,
            Changelog = changelog,
        };
    }

    private static async Task<(string Lsn, bool InRecovery, SlotReport Slot)> ReadSlotAsync(NpgsqlDataSource database, string slot, long? safeWalSizeWarning, CancellationToken ct)
    {
        var connection = await database.OpenConnectionAsync(ct).ConfigureAwait(false);
        await using (connection.ConfigureAwait(false))
        {
            int version;
            bool inRecovery;
            var server = new NpgsqlCommand(ServerSql, connection);
            await using (server.ConfigureAwait(false))
            {
                var reader = await server.ExecuteReaderAsync(ct).ConfigureAwait(false);
                await using (reader.ConfigureAwait(false))
                {
                    await reader.ReadAsync(ct).ConfigureAwait(false);
                    (version, inRecovery) = (reader.GetInt32(0), reader.GetBoolean(1));
                }
            }

            var columns = version >= 170000 ? Columns17 : version >= 140000 ? Columns14 : version >= 130000 ? Columns13 : ColumnsBefore13;
            var command = new NpgsqlCommand(string.Format(CultureInfo.InvariantCulture, SlotSqlFormat, columns), connection);
            await using (command.ConfigureAwait(false))
            {
                command.Parameters.Add(new NpgsqlParameter<string>("slot", NpgsqlDbType.Text) { TypedValue = slot });
                var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
                await using (reader.ConfigureAwait(false))
                {
                    await reader.ReadAsync(ct).ConfigureAwait(false);
                    var lsn = LsnText(reader, 0)!;
                    if (!reader.GetBoolean(1))
                        return (lsn, inRecovery, new SlotReport { Exists = false });
                    return (lsn, inRecovery, new SlotReport
                    {
                        Exists = true,
                        SlotType = reader.GetString(2),
                        Plugin = Nullable<string>(reader, 3),
                        Database = Nullable<string>(reader, 4),
                        Active = reader.GetBoolean(5),
                        ActivePid = NullableValue<int>(reader, 6),
                        WalStatus = Nullable<string>(reader, 7),
                        SafeWalSize = NullableValue<long>(reader, 8),
                        TwoPhase = NullableValue<bool>(reader, 9),
                        InvalidationReason = Nullable<string>(reader, 10),
                        InactiveSince = Timestamp(reader, 11),
                        Failover = NullableValue<bool>(reader, 12),
                        Synced = NullableValue<bool>(reader, 13),
                        RestartLsn = LsnText(reader, 14),
                        ConfirmedFlushLsn = LsnText(reader, 15),
                        LagBytes = NullableValue<long>(reader, 16),
                        RetainedWalBytes = NullableValue<long>(reader, 17),
                        ClientState = Nullable<string>(reader, 18),
                        ClientReplyAt = NullableValue<DateTime>(reader, 19) is { } reply ? new DateTimeOffset(reply, TimeSpan.Zero) : null,
                        ClientFlushLagSeconds = NullableValue<double>(reader, 20),
                        // As the pipeline's slot health watch: the configured threshold, else a quarter of max_slot_wal_keep_size (MB; -1 unlimited).
                        SafeWalSizeWarning = safeWalSizeWarning ?? (NullableValue<long>(reader, 21) is > 0 and var keep ? keep * 1024 * 1024 / DefaultWarningDivisor : null),
                    });
                }
            }
        }
    }

    private static async Task<ChangelogReport> ReadChangelogAsync(NpgsqlDataSource database, string target, string slot, string? slotConfirmed, CancellationToken ct)
    {
        var connection = await database.OpenConnectionAsync(ct).ConfigureAwait(false);
        await using (connection.ConfigureAwait(false))
        {
            var missing = new List<string>();
            var tables = new NpgsqlCommand(SidecarTablesSql, connection);
            await using (tables.ConfigureAwait(false))
            {
                tables.Parameters.Add(new NpgsqlParameter<string[]>("tables", NpgsqlDbType.Array | NpgsqlDbType.Text) { TypedValue = s_sidecarTables });
                var reader = await tables.ExecuteReaderAsync(ct).ConfigureAwait(false);
                await using (reader.ConfigureAwait(false))
                {
                    while (await reader.ReadAsync(ct).ConfigureAwait(false))
                        missing.Add(reader.GetString(0));
                }
            }
            if (missing.Count > 0)
                return new ChangelogReport { Target = target, TablesExist = false, MissingTables = missing };

            var command = new NpgsqlCommand(ChangelogSql, connection);
            await using (command.ConfigureAwait(false))
            {
                command.Parameters.Add(new NpgsqlParameter<string>("slot", NpgsqlDbType.Text) { TypedValue = slot });
                var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
                await using (reader.ConfigureAwait(false))
                {
                    await reader.ReadAsync(ct).ConfigureAwait(false);
                    // confirmed_lsn is the LSN's 64 bits stored in a BIGINT.
                    Lsn? persisted = reader.IsDBNull(0) ? null : new Lsn(unchecked((ulong)reader.GetInt64(0)));
                    long? ahead = persisted is { } p && slotConfirmed is not null && Lsn.TryParse(slotConfirmed, out var confirmed) ? p - confirmed : null;
                    return new ChangelogReport
                    {
                        Target = target,
                        TablesExist = true,
                        MissingTables = [],
                        PersistedLsn = persisted?.ToString(),
                        PersistedAt = Timestamp(reader, 1),
                        PersistedAheadOfSlotBytes = ahead,
                        LastSeq = NullableValue<long>(reader, 2),
                        LastRowAt = Timestamp(reader, 3),
                        ApproximateRows = NullableValue<long>(reader, 4),
                        TotalBytes = NullableValue<long>(reader, 5),
                        RuleFailures = reader.GetInt64(6),
                        LastRuleFailureAt = Timestamp(reader, 7),
                    };
                }
            }
        }
    }

    /// <summary>
    /// The pipeline's own check that the persisted position belongs to the source (invariant 8): a position ahead of the
    /// server's WAL, behind the slot, or of another cluster, database or timeline is an error with its recovery, not lag.
    /// </summary>
    private static async Task<ChangelogReport> CheckPositionAsync(ChangelogReport changelog, string sourceConnectionString, string changelogConnectionString, string slot, CancellationToken ct)
    {
        try
        {
            var problems = await WalPipeline.CheckPositionAsync(sourceConnectionString, changelogConnectionString, slot, ct).ConfigureAwait(false);
            return changelog.WithPositionCheck(problems, null);
        }
        catch (NpgsqlException e)
        {
            // Status reports what it can: a role without replication access (which run needs) leaves only this check out.
            var reason = e is PostgresException pg ? pg.MessageText : e.Message;
            return changelog.WithPositionCheck([], $"could not check it against the server ({reason}); `check` and `run` need a replication connection");
        }
    }

    private static string? LsnText(NpgsqlDataReader reader, int ordinal)
        => reader.IsDBNull(ordinal) ? null : ((Lsn)reader.GetFieldValue<NpgsqlLogSequenceNumber>(ordinal)).ToString();

    private static T? Nullable<T>(NpgsqlDataReader reader, int ordinal)
        where T : class
        => reader.IsDBNull(ordinal) ? null : reader.GetFieldValue<T>(ordinal);

    private static T? NullableValue<T>(NpgsqlDataReader reader, int ordinal)
        where T : struct
        => reader.IsDBNull(ordinal) ? null : reader.GetFieldValue<T>(ordinal);

    // timestamptz arrives as a UTC DateTime.
    private static DateTimeOffset? Timestamp(NpgsqlDataReader reader, int ordinal)
        => reader.IsDBNull(ordinal) ? null : new DateTimeOffset(reader.GetFieldValue<DateTime>(ordinal), TimeSpan.Zero);
}
