using System.Globalization;
using Npgsql;
using Synchro.Pipeline.Postgres;

namespace Synchro.Pipeline.Replication;

/// <summary>
/// A source that is a hot standby (PostgreSQL 16+ decodes on one): what it needs, and the connection to the same database
/// on its primary, where heartbeats are written and standby snapshots logged (a standby writes no WAL of its own).
/// </summary>
/// <param name="PrimaryConnectionString">
/// The source database on the primary (same system identifier and database OID as the source, not in recovery); null when
/// none is known.
/// </param>
internal sealed record StandbySource(string? PrimaryConnectionString)
{
    /// <summary>The first major version that decodes on a standby.</summary>
    public const int DecodingSinceVersion = 16;

    private const string RoleSql = """
        SELECT pg_catalog.pg_is_in_recovery(), pg_catalog.current_setting('hot_standby_feedback')::bool,
               pg_catalog.current_setting('primary_slot_name')
        """;

    private const string PrimarySql = $"SELECT pg_catalog.pg_is_in_recovery(), pg_catalog.current_setting('wal_level'), {ManagedServices.DetectSql}";

    /// <summary>
    /// Checks a source in recovery and finds its primary: <paramref name="primaryConnectionString"/> when given (an error
    /// unless it is the source database on the primary), else the changelog's server when it is the primary — reached in
    /// the source database, because a walsender decodes only its own database's messages.
    /// </summary>
    /// <param name="source">An open connection to the source.</param>
    /// <param name="changelogConnectionString">The changelog's connection string; null when the changelog is the source database.</param>
    /// <param name="primaryConnectionString">The configured primary (<see cref="WalPipelineOptions.PrimaryConnectionString"/>), or null.</param>
    /// <param name="errors">Problems the pipeline cannot run with.</param>
    /// <param name="warnings">Problems it runs with, and what they cost.</param>
    /// <param name="connections">Where the connections to the primary and the changelog come from.</param>
    /// <param name="ct">Cancels the checks.</param>
    /// <returns>Null when the source is not in recovery.</returns>
    public static async Task<StandbySource?> CheckAsync(
        PostgresConnections connections,
        NpgsqlConnection source,
        string? changelogConnectionString,
        string? primaryConnectionString,
        List<string> errors,
        List<string> warnings,
        CancellationToken ct)
    {
        bool inRecovery, feedback;
        string physicalSlot;
        await using (var command = new NpgsqlCommand(RoleSql, source))
        await using (var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false))
        {
            await reader.ReadAsync(ct).ConfigureAwait(false);
            (inRecovery, feedback, physicalSlot) = (reader.GetBoolean(0), reader.GetBoolean(1), reader.GetString(2));
        }
        if (!inRecovery)
            return null;

        var version = source.PostgreSqlVersion.Major;
        if (version < DecodingSinceVersion)
        {
            errors.Add($"The source ({source.Host}:{source.Port.ToString(CultureInfo.InvariantCulture)}) is a standby in recovery, and PostgreSQL {version.ToString(CultureInfo.InvariantCulture)} "
                + $"cannot decode on a standby (logical decoding on a standby needs PostgreSQL {DecodingSinceVersion}+). Point ConnectionString at the primary, or upgrade the standby and its primary to {DecodingSinceVersion} or later.");
            return new StandbySource(PrimaryConnectionString: null);
        }
        if (changelogConnectionString is null)
        {
            errors.Add("The source is a hot standby, which is read-only, and the changelog is written to the source database (no ChangelogConnectionString). "
                + "Set ChangelogConnectionString to a writable database: the same database on the primary, or any other database.");
        }
        if (!feedback)
        {
            warnings.Add("The source is a hot standby with hot_standby_feedback off: the primary's vacuum may remove catalog rows the slot still needs, and the standby then invalidates the slot "
                + "(rows_removed), losing the changes after its position. Set hot_standby_feedback = on on the standby (and primary_slot_name, so the feedback survives its restarts), and reload it.");
        }
        else if (physicalSlot.Length == 0)
        {
            warnings.Add("The source is a hot standby without primary_slot_name: its hot_standby_feedback is forgotten by the primary while the standby is disconnected, and the slot may then be invalidated (rows_removed). "
                + "Stream the standby through a physical slot on the primary (primary_slot_name).");
        }

        var sourceIdentity = await DatabaseIdentity.ReadAsync(source, ct).ConfigureAwait(false);
        var primary = primaryConnectionString ?? await PrimaryFromChangelogAsync(connections, changelogConnectionString, sourceIdentity, source.Database!, ct).ConfigureAwait(false);
        if (primary is null)
        {
            warnings.Add($"The source is a hot standby and no connection to its primary is known, so the pipeline writes no heartbeats (a standby cannot write WAL): while the registered tables are idle the slot does not advance and holds the standby's WAL back, "
                + $"and creating the slot waits for the primary to log a standby snapshot (every 15 s while it writes). Set PrimaryConnectionString to database {PgIdentifier.Quote(source.Database!)} on the primary, "
                + $"or emit heartbeats there yourself: SELECT pg_logical_emit_message(false, 'synchro.heartbeat', ''). The primary also needs wal_level = logical.");
            return new StandbySource(PrimaryConnectionString: null);
        }

        await using var primarySessions = connections.Unpooled(SessionSearchPath.Source(primary), PipelineConnectionKind.Primary);
        await using var connection = await primarySessions.OpenConnectionAsync(ct).ConfigureAwait(false);
        var identity = await DatabaseIdentity.ReadAsync(connection, ct).ConfigureAwait(false);
        string walLevel;
        bool primaryInRecovery;
        ManagedService service;
        await using (var command = new NpgsqlCommand(PrimarySql, connection))
        await using (var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false))
        {
            await reader.ReadAsync(ct).ConfigureAwait(false);
            (primaryInRecovery, walLevel) = (reader.GetBoolean(0), reader.GetString(1));
            service = ManagedServices.Parse(reader.IsDBNull(2) ? null : reader.GetString(2));
        }
        if (identity != sourceIdentity || primaryInRecovery)
        {
            errors.Add($"PrimaryConnectionString ({connection.Host}:{connection.Port.ToString(CultureInfo.InvariantCulture)}/{connection.Database}) is not the source database on the standby's primary: "
                + (identity.SystemId != sourceIdentity.SystemId ? "it is another cluster (system identifier). "
                    : identity.DatabaseOid != sourceIdentity.DatabaseOid ? "it is another database of the cluster; heartbeats must be written in the database the slot decodes. "
                    : "it is in recovery too (a standby). ")
                + $"Point it at database {PgIdentifier.Quote(source.Database!)} on the primary.");
            return new StandbySource(PrimaryConnectionString: null);
        }
        if (walLevel != "logical")
        {
            errors.Add($"The standby's primary has wal_level '{walLevel}'; decoding on a standby needs wal_level = logical on the primary: {ManagedServices.EnableLogicalDecoding(service)}.");
        }
        return new StandbySource(primary);
    }

    /// <summary>
    /// The changelog's server, in the source database, when it is the source's primary (same system identifier, not in
    /// recovery); null otherwise.
    /// </summary>
    private static async Task<string?> PrimaryFromChangelogAsync(PostgresConnections connections, string? changelogConnectionString, DatabaseIdentity source, string sourceDatabase, CancellationToken ct)
    {
        if (changelogConnectionString is null)
            return null;
        await using var changelog = connections.Unpooled(SessionSearchPath.Changelog(changelogConnectionString), PipelineConnectionKind.Changelog);
        await using var connection = await changelog.OpenConnectionAsync(ct).ConfigureAwait(false);
        if ((await DatabaseIdentity.ReadAsync(connection, ct).ConfigureAwait(false)).SystemId != source.SystemId)
            return null;
        await using (var command = new NpgsqlCommand("SELECT pg_catalog.pg_is_in_recovery()", connection))
        {
            if ((bool)(await command.ExecuteScalarAsync(ct).ConfigureAwait(false))!)
                return null;
        }
        return new NpgsqlConnectionStringBuilder(changelogConnectionString) { Database = sourceDatabase, SearchPath = null }.ConnectionString;
    }
}
