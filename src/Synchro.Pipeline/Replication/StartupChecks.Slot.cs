using System.Globalization;
using Npgsql;
using NpgsqlTypes;
using Synchro.Pipeline.Postgres;

namespace Synchro.Pipeline.Replication;

internal static partial class StartupChecks
{
    private const string SlotSql = """
        SELECT slot_type, plugin::text, database::text, active, active_pid, wal_status
        FROM pg_catalog.pg_replication_slots
        WHERE slot_name = @slot
        """;

    /// <returns>Whether the slot exists.</returns>
    private static async Task<bool> CheckSlotAsync(
        NpgsqlConnection connection,
        string database,
        string slotName,
        List<string> errors,
        List<string> warnings,
        CancellationToken ct)
    {
        var command = new NpgsqlCommand(SlotSql, connection);
        await using (command.ConfigureAwait(false))
        {
            command.Parameters.Add(new NpgsqlParameter<string>("slot", NpgsqlDbType.Text) { TypedValue = slotName });
            var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                if (!await reader.ReadAsync(ct).ConfigureAwait(false))
                    return false;

                var slotType = reader.GetString(0);
                var plugin = reader.IsDBNull(1) ? null : reader.GetString(1);
                var slotDatabase = reader.IsDBNull(2) ? null : reader.GetString(2);
                var active = reader.GetBoolean(3);
                int? activePid = reader.IsDBNull(4) ? null : reader.GetInt32(4);
                var walStatus = reader.IsDBNull(5) ? null : reader.GetString(5);
                CheckSlot(database, slotName, slotType, plugin, slotDatabase, active, activePid, walStatus, errors, warnings);
                return true;
            }
        }
    }

    private static void CheckSlot(
        string database,
        string slotName,
        string slotType,
        string? plugin,
        string? slotDatabase,
        bool active,
        int? activePid,
        string? walStatus,
        List<string> errors,
        List<string> warnings)
    {
        var slot = PgIdentifier.Quote(slotName);
        // A valid slot name is [a-z0-9_]+, so it is safe inside the quoted literal of the suggested fix.
        var drop = $"SELECT pg_drop_replication_slot('{slotName}')";

        if (!string.Equals(slotType, "logical", StringComparison.Ordinal))
        {
            errors.Add($"Replication slot {slot} is a {slotType} slot; the pipeline needs a logical slot using pgoutput. Configure "
                + $"another slot name, or drop this one with {drop} if nothing else uses it.");
            return;
        }

        if (!string.Equals(plugin, ReplicationSlots.Plugin, StringComparison.Ordinal))
        {
            errors.Add($"Replication slot {slot} uses the output plugin '{plugin}', not '{ReplicationSlots.Plugin}'; drop it with "
                + $"{drop} (the pipeline then creates it) or configure another slot name.");
        }

        if (!string.Equals(slotDatabase, database, StringComparison.Ordinal))
        {
            errors.Add($"Replication slot {slot} belongs to database '{slotDatabase}', not {PgIdentifier.Quote(database)}; a logical slot "
                + $"decodes one database only. Configure another slot name, or drop it with {drop} if nothing else uses it.");
        }

        if (active)
        {
            errors.Add(activePid is { } pid
                ? $"Replication slot {slot} is in use by another connection (walsender process {pid.ToString(CultureInfo.InvariantCulture)}); "
                    + $"stop that consumer, or end it with SELECT pg_terminate_backend({pid.ToString(CultureInfo.InvariantCulture)}), before starting the pipeline."
                : $"Replication slot {slot} is in use by another connection; stop that consumer before starting the pipeline.");
        }

        switch (walStatus)
        {
            case "lost":
                errors.Add($"Replication slot {slot} has been invalidated (wal_status 'lost'): WAL it still needed was removed, "
                    + $"typically past max_slot_wal_keep_size, so changes since its position are gone. Drop it with {drop}, let "
                    + "the pipeline recreate it, and rebuild the changelog from a fresh copy of the tables.");
                break;
            case "unreserved":
                warnings.Add($"Replication slot {slot} is about to be invalidated (wal_status 'unreserved'): it holds back more WAL than "
                    + "max_slot_wal_keep_size allows, and the next checkpoint may remove it; raise max_slot_wal_keep_size or let "
                    + "the pipeline catch up.");
                break;
        }
    }
}
