using System.Globalization;
using Microsoft.Extensions.Logging;
using Npgsql;
using NpgsqlTypes;
using Synchro.Pipeline.Diagnostics;

namespace Synchro.Pipeline.Replication;

/// <summary>
/// Watches the slot while the pipeline runs: a warning when it nears invalidation (<c>wal_status</c> 'unreserved', or
/// <c>safe_wal_size</c> below the threshold), a fatal <see cref="WalPipelineException"/> when it is invalidated (for any
/// <see cref="SlotInvalidation"/> reason) or dropped.
/// </summary>
/// <remarks>
/// Runs its query on the slot lock's connection, so a lock session that dies also ends the run (which then reconnects
/// and takes the lock again). PostgreSQL 15 reports a slot invalidated past <c>max_slot_wal_keep_size</c> as
/// <c>wal_status</c> 'lost' (and terminates its walsender); <c>safe_wal_size</c> is null without that setting.
/// </remarks>
internal sealed partial class SlotHealthWatch(Func<NpgsqlConnection?> connection, string slotName, TimeSpan interval, long? safeWalSizeWarning, PipelineMetrics metrics, ILogger logger)
{
    // max_slot_wal_keep_size is in MB (-1: unlimited); the default warning threshold is a quarter of it.
    // {0}: the columns PostgreSQL 17 added (SlotInvalidation.ReasonSinceVersion), or NULLs before them.
    private const string HealthSqlFormat = """
        SELECT s.wal_status, s.safe_wal_size,
               (SELECT setting::bigint FROM pg_catalog.pg_settings WHERE name = 'max_slot_wal_keep_size'),
               {0}
        FROM pg_catalog.pg_replication_slots s
        WHERE s.slot_name = @slot
        """;

    private static readonly string s_healthSql17 = string.Format(CultureInfo.InvariantCulture, HealthSqlFormat, "s.invalidation_reason, s.inactive_since, s.failover, s.synced");
    private static readonly string s_healthSqlBefore17 = string.Format(CultureInfo.InvariantCulture, HealthSqlFormat, "NULL::text, NULL::timestamptz, NULL::boolean, NULL::boolean");

    private const long DefaultWarningDivisor = 4;

    /// <summary>The fatal error of a slot that was dropped while the pipeline ran.</summary>
    public static string DroppedMessage(string slotName)
        => $"Replication slot '{slotName}' no longer exists: it was dropped while the pipeline ran, so the changes since the last committed "
            + "position cannot be read again. Restart the pipeline to recreate the slot, and resync clients (their changelog has a gap).";

    /// <param name="stopping">Ends the checks: none starts once the run is stopping.</param>
    /// <param name="aborting">Cancels a check in flight (the stop's grace ran out).</param>
    public async Task RunAsync(CancellationToken stopping, CancellationToken aborting)
    {
        var warned = 0;
        using var timer = new PeriodicTimer(interval);
        do
        {
            var found = await QueryAsync(aborting).ConfigureAwait(false);
            if (found is not var (health, keepMegabytes))
                throw new WalPipelineException(DroppedMessage(slotName));
            metrics.SlotHealth(health);
            var (walStatus, safeWalSize) = (health.WalStatus, health.SafeWalSize);
            // Every invalidation: 17+ names its reason; before 17 only wal_status 'lost' shows it.
            if (health.InvalidationReason is not null || walStatus == "lost")
                throw new WalPipelineException(SlotInvalidation.Message(slotName, health.InvalidationReason, SlotInvalidation.Observed(health.InvalidationReason)));

            var threshold = safeWalSizeWarning ?? (keepMegabytes is > 0 ? keepMegabytes.Value * 1024 * 1024 / DefaultWarningDivisor : 0);
            // 0 healthy, 1 safe_wal_size below the threshold, 2 'unreserved': warned again when it gets worse.
            var level = walStatus == "unreserved" ? 2 : safeWalSize is { } safe && safe < threshold ? 1 : 0;
            if (level > warned)
                LogAtRisk(logger, slotName, level == 2 ? "wal_status 'unreserved'" : $"safe_wal_size {safeWalSize} bytes, below {threshold}");
            else if (level == 0 && warned > 0)
                LogRecovered(logger, slotName, walStatus ?? "null");
            warned = level;
        }
        while (await timer.WaitForNextTickAsync(stopping).ConfigureAwait(false));
    }

    private async Task<(SlotHealthReading Health, long? KeepMegabytes)?> QueryAsync(CancellationToken cancellationToken)
    {
        var session = connection() ?? throw new InvalidOperationException("The slot health watch runs only while the slot lock is held.");
        var sql = session.PostgreSqlVersion.Major >= SlotInvalidation.ReasonSinceVersion ? s_healthSql17 : s_healthSqlBefore17;
        await using var command = new NpgsqlCommand(sql, session);
        command.Parameters.Add(new NpgsqlParameter<string>("slot", NpgsqlDbType.Text) { TypedValue = slotName });
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        if (!await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            return null;
        var health = new SlotHealthReading(
            reader.IsDBNull(0) ? null : reader.GetString(0),
            reader.IsDBNull(1) ? null : reader.GetInt64(1),
            reader.IsDBNull(3) ? null : reader.GetString(3),
            // timestamptz arrives as a UTC DateTime.
            reader.IsDBNull(4) ? null : new DateTimeOffset(reader.GetFieldValue<DateTime>(4), TimeSpan.Zero),
            reader.IsDBNull(5) ? null : reader.GetBoolean(5),
            reader.IsDBNull(6) ? null : reader.GetBoolean(6));
        return (health, reader.IsDBNull(2) ? null : reader.GetInt64(2));
    }

    [LoggerMessage(EventId = EventIds.SlotHealthWarning, Level = LogLevel.Warning,
        Message = "Replication slot {Slot} is close to being invalidated ({Risk}): the server may remove WAL it still needs at the next checkpoint, "
            + "and the changes in it would be lost. Let the pipeline catch up (is it stalled? see slow-batch warnings and locks on the sidecar tables) "
            + "or raise max_slot_wal_keep_size")]
    private static partial void LogAtRisk(ILogger logger, string slot, string risk);

    [LoggerMessage(EventId = EventIds.SlotHealthRecovered, Level = LogLevel.Information, Message = "Replication slot {Slot} is out of danger again (wal_status {WalStatus})")]
    private static partial void LogRecovered(ILogger logger, string slot, string walStatus);
}
