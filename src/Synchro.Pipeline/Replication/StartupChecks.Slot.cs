using System.Globalization;
using Npgsql;
using NpgsqlTypes;
using Synchro.Pipeline.Postgres;

namespace Synchro.Pipeline.Replication;

internal static partial class StartupChecks
{
    // {0}: invalidation_reason from PostgreSQL 17 (SlotInvalidation.ReasonSinceVersion), NULL before.
    private const string SlotSqlFormat = """
        SELECT slot_type, plugin::text, database::text, active, active_pid, wal_status, {0}
        FROM pg_catalog.pg_replication_slots
        WHERE slot_name = @slot
        """;

    private static readonly string s_slotSql17 = string.Format(CultureInfo.InvariantCulture, SlotSqlFormat, "invalidation_reason");
    private static readonly string s_slotSqlBefore17 = string.Format(CultureInfo.InvariantCulture, SlotSqlFormat, "NULL::text");

    /// <returns>Whether the slot exists.</returns>
    private static async Task<bool> CheckSlotAsync(
        NpgsqlConnection connection,
        string database,
        string slotName,
        List<string> errors,
        List<string> warnings,
        CancellationToken ct)
    {
        var sql = connection.PostgreSqlVersion.Major >= SlotInvalidation.ReasonSinceVersion ? s_slotSql17 : s_slotSqlBefore17;
        var command = new NpgsqlCommand(sql, connection);
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
                var invalidationReason = reader.IsDBNull(6) ? null : reader.GetString(6);
                CheckSlot(database, slotName, slotType, plugin, slotDatabase, active, activePid, walStatus, invalidationReason, errors, warnings);
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
        string? invalidationReason,
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

        // Every invalidation: 17+ names its reason; before 17 only wal_status 'lost' shows it.
        if (invalidationReason is not null || walStatus == "lost")
        {
            errors.Add(SlotInvalidation.Message(slotName, invalidationReason, SlotInvalidation.Observed(invalidationReason)));
            return;
        }

        if (walStatus == "unreserved")
        {
            warnings.Add($"Replication slot {slot} is about to be invalidated (wal_status 'unreserved'): it holds back more WAL than "
                + "max_slot_wal_keep_size allows, and the next checkpoint may remove it; raise max_slot_wal_keep_size or let "
                + "the pipeline catch up.");
        }
    }
}
