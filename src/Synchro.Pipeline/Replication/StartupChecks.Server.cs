using System.Globalization;
using Npgsql;
using NpgsqlTypes;
using Synchro.Pipeline.Postgres;

namespace Synchro.Pipeline.Replication;

// The server and the connecting role: wal_level, a free replication slot and walsender, the REPLICATION attribute.
internal static partial class StartupChecks
{
    private const string LogicalWalLevel = "logical";

    // The walsenders in use are pg_stat_get_wal_senders()'s rows, which every role may count (pg_stat_replication's fields
    // are hidden from others, its rows are not). Slots are the cluster's: every database, physical and temporary ones too.
    private const string ServerSql = $"""
        SELECT pg_catalog.current_setting('wal_level'),
               pg_catalog.current_database()::text,
               pg_catalog.current_setting('server_encoding'),
               pg_catalog.current_setting('max_replication_slots')::int,
               (SELECT pg_catalog.count(*)::int FROM pg_catalog.pg_replication_slots),
               ARRAY(SELECT s.slot_name::text FROM pg_catalog.pg_replication_slots s WHERE NOT s.active ORDER BY s.slot_name),
               EXISTS (SELECT 1 FROM pg_catalog.pg_replication_slots s WHERE s.slot_name = @slot),
               EXISTS (SELECT 1 FROM pg_catalog.pg_replication_slots s WHERE s.slot_name = @slot AND s.active),
               pg_catalog.current_setting('max_wal_senders')::int,
               (SELECT pg_catalog.count(*)::int FROM pg_catalog.pg_stat_get_wal_senders()),
               r.rolname::text,
               r.rolsuper,
               r.rolreplication,
               EXISTS (SELECT 1 FROM pg_catalog.pg_roles g WHERE g.rolname = 'rds_replication' AND pg_catalog.pg_has_role(r.oid, g.oid, 'MEMBER')),
               {ManagedServices.DetectSql}
        FROM pg_catalog.pg_roles r
        WHERE r.rolname = session_user
        """;

    // How many slot names an error lists as candidates to drop.
    private const int ListedSlots = 5;

    /// <summary>What the server and the connecting role are, for the checks of this file and the later ones.</summary>
    private sealed record ServerFacts(
        string WalLevel,
        string Database,
        string Encoding,
        int MaxSlots,
        int UsedSlots,
        string[] InactiveSlots,
        bool SlotExists,
        bool SlotActive,
        int MaxSenders,
        int UsedSenders,
        string Role,
        bool Superuser,
        bool Replication,
        bool RdsReplication,
        ManagedService Service);

    private static async Task<ServerFacts> ReadServerAsync(NpgsqlConnection connection, string slotName, CancellationToken ct)
    {
        var command = new NpgsqlCommand(ServerSql, connection);
        await using (command.ConfigureAwait(false))
        {
            command.Parameters.Add(new NpgsqlParameter<string>("slot", NpgsqlDbType.Text) { TypedValue = slotName ?? "" });
            var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                await reader.ReadAsync(ct).ConfigureAwait(false);
                return new ServerFacts(
                    reader.GetString(0), reader.GetString(1), reader.GetString(2),
                    reader.GetInt32(3), reader.GetInt32(4), reader.GetFieldValue<string[]>(5), reader.GetBoolean(6), reader.GetBoolean(7),
                    reader.GetInt32(8), reader.GetInt32(9),
                    reader.GetString(10), reader.GetBoolean(11), reader.GetBoolean(12), reader.GetBoolean(13),
                    ManagedServices.Parse(reader.IsDBNull(14) ? null : reader.GetString(14)));
            }
        }
    }

    /// <summary>
    /// wal_level, the role's right to replicate, a free slot when the pipeline must create its own, a free walsender for its stream;
    /// each fix in the way of the server's <see cref="ManagedService"/>.
    /// </summary>
    /// <param name="server">What <see cref="ReadServerAsync"/> read.</param>
    /// <param name="slotValid">Whether the slot name is valid (an invalid one is never created, so it needs no free slot).</param>
    /// <param name="busySendersFail">Whether no free walsender is an error (<c>check</c>) or a warning (a start, which waits for one
    /// as for a server out of connections).</param>
    /// <param name="errors">Receives the errors.</param>
    /// <param name="warnings">Receives the warnings.</param>
    private static void CheckServer(ServerFacts server, bool slotValid, bool busySendersFail, List<string> errors, List<string> warnings)
    {
        var service = server.Service;
        if (!string.Equals(server.WalLevel, LogicalWalLevel, StringComparison.Ordinal))
            errors.Add($"wal_level is '{server.WalLevel}', and logical decoding needs wal_level = logical: {ManagedServices.EnableLogicalDecoding(service)}.");

        if (!server.Superuser && !server.Replication && !server.RdsReplication)
        {
            errors.Add($"Role {PgIdentifier.Quote(server.Role)} may not replicate: it has neither the REPLICATION attribute nor superuser"
                + (service == ManagedService.AmazonRds ? ", and is no member of rds_replication" : "")
                + $", so it can neither create the slot nor stream from it. Grant it, {ManagedServices.GrantReplication(service, server.Role)}");
        }

        if (slotValid && !server.SlotExists && server.UsedSlots >= server.MaxSlots)
        {
            var value = (server.UsedSlots + 1).ToString(CultureInfo.InvariantCulture);
            errors.Add($"No replication slot is free for the pipeline's slot: max_replication_slots = {server.MaxSlots.ToString(CultureInfo.InvariantCulture)}, "
                + $"and the server has {Count(server.UsedSlots, "slot")} (every database's, physical ones too). "
                + $"Raise it: {ManagedServices.SetStartSetting(service, "max_replication_slots", value)}; or drop a slot nothing uses"
                + InactiveSlotsHint(server.InactiveSlots) + ".");
        }

        // The pipeline's stream takes one walsender; one already on its slot is another consumer, which the slot check reports.
        if (!server.SlotActive && server.UsedSenders >= server.MaxSenders)
        {
            var value = (server.UsedSenders + 1).ToString(CultureInfo.InvariantCulture);
            var message = $"No walsender is free for the pipeline's replication connection: max_wal_senders = {server.MaxSenders.ToString(CultureInfo.InvariantCulture)}, "
                + $"and the server runs {Count(server.UsedSenders, "walsender")} (SELECT pid, application_name, client_addr FROM pg_stat_replication lists them). "
                + $"Raise it: {ManagedServices.SetStartSetting(service, "max_wal_senders", value)}; or stop a replication client that is no longer needed.";
            (busySendersFail ? errors : warnings).Add(busySendersFail ? message : message + " Meanwhile the pipeline waits for one, as for a server out of connections.");
        }
    }

    private static string InactiveSlotsHint(string[] inactive)
    {
        if (inactive.Length == 0)
            return " (none is inactive now: SELECT slot_name, slot_type, database, active_pid FROM pg_replication_slots lists them)";
        // PostgreSQL allows only [a-z0-9_] in slot names; the doubled quote keeps the literal whole regardless.
        var shown = inactive.Take(ListedSlots).Select(s => $"'{s.Replace("'", "''", StringComparison.Ordinal)}'");
        var more = inactive.Length > ListedSlots ? $" and {(inactive.Length - ListedSlots).ToString(CultureInfo.InvariantCulture)} more" : "";
        return $" (inactive now: {string.Join(", ", shown)}{more}) with SELECT pg_drop_replication_slot('<name>')";
    }

    private static string Count(int n, string noun) => $"{n.ToString(CultureInfo.InvariantCulture)} {noun}{(n == 1 ? "" : "s")}";
}
