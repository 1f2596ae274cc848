using System.Globalization;
using System.Text.RegularExpressions;
using Npgsql;
using NpgsqlTypes;
using Synchro.Pipeline.Postgres;

namespace Synchro.Pipeline.Replication;

/// <summary>
/// What <see cref="WalPipelineOptions.Failover"/> needs (PostgreSQL 17+ failover slots): the slot itself, checked at every
/// start; and the primary's <c>synchronized_standby_slots</c> and each reachable standby's slot synchronisation, checked
/// by <c>check</c>. Every problem comes with its fix.
/// </summary>
/// <remarks>
/// The standbys are <see cref="WalPipelineOptions.FailoverStandbys"/> and the hosts of a multi-host source connection string
/// (<c>Host=primary,standby1:5433</c>) that are in recovery. Names reach SQL text only in the suggested fixes, which are
/// shown, never executed.
/// </remarks>
internal static partial class FailoverChecks
{
    /// <summary>The version from which logical slots can be failover slots.</summary>
    public const int SinceVersion = 17;

    // A standby that does not answer within this is reported unreachable, not waited for.
    private const int StandbyTimeoutSeconds = 5;

    private const string SlotFailoverSql = "SELECT failover FROM pg_catalog.pg_replication_slots WHERE slot_name = @slot";

    private const string PrimarySql = """
        SELECT pg_catalog.pg_is_in_recovery(), pg_catalog.current_setting('synchronized_standby_slots'),
               ARRAY(SELECT slot_name::text FROM pg_catalog.pg_replication_slots WHERE slot_type = 'physical' ORDER BY slot_name)
        """;

    private const string StandbySql = """
        SELECT pg_catalog.pg_is_in_recovery(), pg_catalog.current_setting('server_version_num')::int,
               pg_catalog.current_setting('sync_replication_slots', true), pg_catalog.current_setting('hot_standby_feedback'),
               pg_catalog.current_setting('primary_slot_name'), pg_catalog.current_setting('wal_level')
        """;

    private const string SyncedCopySql = """
        SELECT synced, invalidation_reason, temporary FROM pg_catalog.pg_replication_slots WHERE slot_name = @slot
        """;

    /// <summary>
    /// The start-up errors of <see cref="WalPipelineOptions.Failover"/>: a server before 17, or an existing slot that is no
    /// failover slot (the server alters a slot only over a replication connection, with <c>ALTER_REPLICATION_SLOT</c>,
    /// which Npgsql does not send).
    /// </summary>
    public static async Task<IReadOnlyList<string>> CheckSlotAsync(NpgsqlConnection connection, string slotName, CancellationToken ct)
    {
        var version = connection.PostgreSqlVersion.Major;
        if (version < SinceVersion)
        {
            return [$"{nameof(WalPipelineOptions.Failover)} is on, but the source is PostgreSQL {version.ToString(CultureInfo.InvariantCulture)}: failover slots "
                + $"need PostgreSQL {SinceVersion} or later. Turn {nameof(WalPipelineOptions.Failover)} off, or upgrade the source server."];
        }

        await using var command = new NpgsqlCommand(SlotFailoverSql, connection);
        command.Parameters.Add(new NpgsqlParameter<string>("slot", NpgsqlDbType.Text) { TypedValue = slotName });
        if (await command.ExecuteScalarAsync(ct).ConfigureAwait(false) is not false)
            return [];
        // A valid slot name is [a-z0-9_]+, so it is safe inside the quoted literals of the suggested fix.
        return [$"Replication slot '{slotName}' is no failover slot, and {nameof(WalPipelineOptions.Failover)} is on: standbys would keep no copy of it. "
            + $"With the pipeline stopped (the slot must be idle), turn it on over a replication connection: "
            + $"psql \"dbname={connection.Database} replication=database\" -c 'ALTER_REPLICATION_SLOT {slotName} (FAILOVER true)'. "
            + $"Or drop it (SELECT pg_drop_replication_slot('{slotName}')) and let the pipeline create a failover slot (clients then resync), "
            + $"or turn {nameof(WalPipelineOptions.Failover)} off."];
    }

    /// <summary>
    /// The primary's <c>synchronized_standby_slots</c> and the slot synchronisation of every standby: those of
    /// <paramref name="standbyConnectionStrings"/>, and the hosts of <paramref name="sourceConnectionString"/> other than the
    /// primary; each problem is a warning with its fix.
    /// </summary>
    /// <param name="connections">Where the connections to the standbys come from.</param>
    /// <param name="primary">A connection to the source server the pipeline uses.</param>
    /// <param name="sourceConnectionString">The source connection string, whose other hosts are the standbys.</param>
    /// <param name="standbyConnectionStrings">Connection strings of further standbys.</param>
    /// <param name="slotName">The pipeline's slot, whose synced copy each standby should hold.</param>
    /// <param name="ct">Cancels the checks.</param>
    public static async Task<IReadOnlyList<string>> CheckStandbysAsync(
        PostgresConnections connections, NpgsqlConnection primary, string sourceConnectionString, IEnumerable<string> standbyConnectionStrings, string slotName, CancellationToken ct)
    {
        var warnings = new List<string>();
        bool inRecovery;
        string[] standbySlots;
        string[] physicalSlots;
        await using (var command = new NpgsqlCommand(PrimarySql, primary))
        await using (var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false))
        {
            await reader.ReadAsync(ct).ConfigureAwait(false);
            inRecovery = reader.GetBoolean(0);
            standbySlots = SlotList(reader.GetString(1));
            physicalSlots = reader.GetFieldValue<string[]>(2);
        }

        var primaryAt = $"{primary.Host}:{primary.Port.ToString(CultureInfo.InvariantCulture)}";
        if (inRecovery)
        {
            warnings.Add($"The source connection reached {primaryAt}, a standby: failover slots are created and checked on the primary. "
                + "Put the primary first in Host, or set Target Session Attributes=primary.");
            return warnings;
        }

        var available = physicalSlots.Length == 0
            ? "the primary has no physical slot: create one per standby (SELECT pg_create_physical_replication_slot('standby1')) and set it as that standby's primary_slot_name"
            : $"the primary's physical slots: {string.Join(", ", physicalSlots)}";
        if (standbySlots.Length == 0)
        {
            warnings.Add($"synchronized_standby_slots is empty on the primary {primaryAt}: the pipeline may receive and confirm changes no standby has "
                + $"received, and after a failover the standby's copy of slot '{slotName}' would not have them. Set it to the physical slots of the "
                + $"standbys that may take over (ALTER SYSTEM SET synchronized_standby_slots = '...'; SELECT pg_reload_conf()); {available}.");
        }
        foreach (var missing in standbySlots.Where(s => !physicalSlots.Contains(s, StringComparer.Ordinal)))
        {
            warnings.Add($"synchronized_standby_slots on the primary {primaryAt} names '{missing}', which is no physical slot there: the pipeline's "
                + $"stream waits for it for ever. Create it (SELECT pg_create_physical_replication_slot('{missing}')) or remove it from the setting; {available}.");
        }

        var standbys = OtherHosts(sourceConnectionString, primary.Host, primary.Port)
            .Select(h => new NpgsqlConnectionStringBuilder(sourceConnectionString) { Host = h.Host, Port = h.Port, TargetSessionAttributes = null })
            .Concat(standbyConnectionStrings.Select(s => new NpgsqlConnectionStringBuilder(s)))
            .ToList();
        if (standbys.Count == 0)
        {
            warnings.Add($"No standby to check: name them in {nameof(WalPipelineOptions.FailoverStandbys)} (check --standby 'Host=standby1;...'), or add them to "
                + "the source connection string's Host (Host=primary,standby1:5433 with Target Session Attributes=primary), and check verifies their slot synchronisation.");
        }
        foreach (var standby in standbys)
            warnings.AddRange(await CheckStandbyAsync(connections, standby, slotName, standbySlots, physicalSlots, ct).ConfigureAwait(false));
        return warnings;
    }

    private static async Task<List<string>> CheckStandbyAsync(
        PostgresConnections connections, NpgsqlConnectionStringBuilder builder, string slotName, string[] standbySlots, string[] physicalSlots, CancellationToken ct)
    {
        var at = $"Standby {builder.Host}:{builder.Port.ToString(CultureInfo.InvariantCulture)}";
        var problems = new List<string>();
        builder.Timeout = StandbyTimeoutSeconds;
        builder.Pooling = false;
        try
        {
            await using var standby = connections.Unpooled(builder.ConnectionString, PipelineConnectionKind.Standby);
            await using var connection = await standby.OpenConnectionAsync(ct).ConfigureAwait(false);
            await using (var command = new NpgsqlCommand(StandbySql, connection))
            await using (var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false))
            {
                await reader.ReadAsync(ct).ConfigureAwait(false);
                if (!reader.GetBoolean(0))
                    return [];
                var version = reader.GetInt32(1);
                if (version < SinceVersion * 10000)
                {
                    return [$"{at} is PostgreSQL {(version / 10000).ToString(CultureInfo.InvariantCulture)}: it cannot keep a copy of slot '{slotName}' "
                        + $"(slot synchronisation needs {SinceVersion} or later); upgrade it, or do not let it take over."];
                }
                if (reader.GetString(2) != "on")
                    problems.Add($"{at}: sync_replication_slots is off, so it keeps no copy of slot '{slotName}'. Set sync_replication_slots = on there (and reload).");
                if (reader.GetString(3) != "on")
                {
                    problems.Add($"{at}: hot_standby_feedback is off, so the primary's vacuum may remove rows its copy of the slot needs (invalidated as rows_removed). "
                        + "Set hot_standby_feedback = on there (and reload).");
                }
                var primarySlot = reader.GetString(4);
                if (primarySlot.Length == 0)
                {
                    problems.Add($"{at}: primary_slot_name is not set; slot synchronisation needs the standby to stream through a physical slot. Create one on the "
                        + "primary (SELECT pg_create_physical_replication_slot('standby1')), set primary_slot_name to it there (and reload), and name it in the primary's synchronized_standby_slots.");
                }
                else if (!physicalSlots.Contains(primarySlot, StringComparer.Ordinal))
                {
                    problems.Add($"{at}: primary_slot_name is '{primarySlot}', which is no physical slot on the primary. Create it there "
                        + $"(SELECT pg_create_physical_replication_slot('{primarySlot}')) or correct the name.");
                }
                else if (!standbySlots.Contains(primarySlot, StringComparer.Ordinal))
                {
                    problems.Add($"{at}: its slot '{primarySlot}' is not in the primary's synchronized_standby_slots, so the pipeline may receive changes this standby "
                        + $"has not, and its copy of slot '{slotName}' would miss them after a failover. Add '{primarySlot}' to synchronized_standby_slots on the primary (and reload).");
                }
                if (reader.GetString(5) != "logical")
                    problems.Add($"{at}: wal_level is '{reader.GetString(5)}'; slot synchronisation needs wal_level = logical on the standby too. Set it there and restart it.");
            }

            if (await PrimaryConnInfoAsync(connection, ct).ConfigureAwait(false) is var (conninfo, unreadable))
            {
                if (unreadable is not null)
                    problems.Add($"{at}: primary_conninfo could not be read ({unreadable}); check by hand that it names a dbname, which slot synchronisation needs.");
                else if (!NamesDatabase(conninfo!))
                {
                    problems.Add($"{at}: primary_conninfo names no dbname; slot synchronisation connects to a database of the primary. Add dbname=postgres "
                        + "(any database) to it there (and reload).");
                }
            }

            if (problems.Count == 0)
                problems.AddRange(await CheckSyncedCopyAsync(connection, at, slotName, ct).ConfigureAwait(false));
        }
        catch (NpgsqlException e)
        {
            problems.Add($"{at} could not be checked: {(e is PostgresException pg ? pg.MessageText : e.Message)}. Make it reachable with the source's credentials, "
                + "or remove it from the connection string's Host.");
        }
        return problems;
    }

    private static async Task<(string? ConnInfo, string? Unreadable)?> PrimaryConnInfoAsync(NpgsqlConnection connection, CancellationToken ct)
    {
        try
        {
            await using var command = new NpgsqlCommand("SELECT pg_catalog.current_setting('primary_conninfo')", connection);
            return ((string?)await command.ExecuteScalarAsync(ct).ConfigureAwait(false), null);
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.InsufficientPrivilege)
        {
            // Superuser-only, as it may hold a password: pg_read_all_settings reads it.
            return (null, $"{e.MessageText}; grant pg_read_all_settings to the pipeline's role to have it checked");
        }
    }

    private static async Task<List<string>> CheckSyncedCopyAsync(NpgsqlConnection connection, string at, string slotName, CancellationToken ct)
    {
        await using var command = new NpgsqlCommand(SyncedCopySql, connection);
        command.Parameters.Add(new NpgsqlParameter<string>("slot", NpgsqlDbType.Text) { TypedValue = slotName });
        await using var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
        if (!await reader.ReadAsync(ct).ConfigureAwait(false))
        {
            return [$"{at} has no copy of slot '{slotName}' yet: the slot sync worker copies it once the primary's slot exists as a failover slot "
                + "and has been used past the standby's position; check again after the pipeline has confirmed a position."];
        }
        if (!reader.GetBoolean(0))
        {
            return [$"{at} has a slot named '{slotName}' of its own (not synced from the primary), which blocks the synchronisation of the pipeline's slot. "
                + $"Drop it there (SELECT pg_drop_replication_slot('{slotName}')) if nothing uses it."];
        }
        if (!reader.IsDBNull(1))
        {
            return [$"{at}: its copy of slot '{slotName}' was invalidated ({reader.GetString(1)}), so a failover to it would lose the slot. "
                + "Fix the cause (see docs/operations.md, invalidated slots); the worker then synchronises the slot again."];
        }
        // A synced copy stays temporary until the primary's slot passes the standby's oldest needed WAL and catalog rows;
        // a standby promoted before that drops it, and the pipeline has no slot there.
        if (reader.GetBoolean(2))
        {
            return [$"{at}: its copy of slot '{slotName}' is not persistent yet (temporary): the primary's slot has not yet moved past what "
                + "the standby still needs, so a failover now would lose the slot. It becomes persistent once the pipeline confirms further; "
                + "check again after the pipeline has run under load for a while."];
        }
        return [];
    }

    /// <summary>The hosts of a multi-host connection string other than the one connected to, each with its port.</summary>
    internal static List<(string Host, int Port)> OtherHosts(string connectionString, string? connectedHost, int connectedPort)
    {
        var builder = new NpgsqlConnectionStringBuilder(connectionString);
        var hosts = new List<(string, int)>();
        foreach (var entry in (builder.Host ?? "").Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            // host, host:port, [v6], [v6]:port; a bare IPv6 address has several colons and no port.
            var (host, port) = HostAndPort(entry, builder.Port);
            if (!(string.Equals(host, connectedHost, StringComparison.OrdinalIgnoreCase) && port == connectedPort))
                hosts.Add((host, port));
        }
        return hosts;
    }

    private static (string Host, int Port) HostAndPort(string entry, int defaultPort)
    {
        var colon = entry.LastIndexOf(':');
        var bracket = entry.LastIndexOf(']');
        if (colon > bracket && (bracket >= 0 || entry.IndexOf(':', StringComparison.Ordinal) == colon)
            && int.TryParse(entry.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var port))
            return (entry[..colon].Trim('[', ']'), port);
        return (entry.Trim('[', ']'), defaultPort);
    }

    /// <summary>The names in <c>synchronized_standby_slots</c>: comma-separated, optionally double-quoted.</summary>
    internal static string[] SlotList(string setting)
        => [.. setting.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).Select(s => s.Trim('"'))];

    /// <summary>Whether a <c>primary_conninfo</c> (keyword/value or URI form) names a database.</summary>
    internal static bool NamesDatabase(string conninfo)
        => KeywordDatabase().IsMatch(conninfo) || UriDatabase().IsMatch(conninfo);

    [GeneratedRegex(@"(^|\s)dbname\s*=\s*('[^']+'|[^\s']+)", RegexOptions.CultureInvariant)]
    private static partial Regex KeywordDatabase();

    [GeneratedRegex(@"^postgres(ql)?://[^/?]*/[^?\s]+|[?&]dbname=[^&\s]+", RegexOptions.CultureInvariant)]
    private static partial Regex UriDatabase();
}
