using Microsoft.Extensions.Logging;
using Npgsql;
using NpgsqlTypes;
using Synchro.Pipeline.Diagnostics;

namespace Synchro.Pipeline.Replication;

/// <summary>
/// Watches the slot while the pipeline runs: a warning when it nears invalidation (<c>wal_status</c> 'unreserved', or
/// <c>safe_wal_size</c> below the threshold), a fatal <see cref="WalPipelineException"/> when it is lost or dropped.
/// </summary>
/// <remarks>
/// Runs its query on the slot lock's connection, so a lock session that dies also ends the run (which then reconnects
/// and takes the lock again). PostgreSQL 15 reports a slot invalidated past <c>max_slot_wal_keep_size</c> as
/// <c>wal_status</c> 'lost' (and terminates its walsender); <c>safe_wal_size</c> is null without that setting.
/// </remarks>
internal sealed partial class SlotHealthWatch(Func<NpgsqlConnection?> connection, string slotName, TimeSpan interval, long? safeWalSizeWarning, PipelineMetrics metrics, ILogger logger)
{
    // max_slot_wal_keep_size is in MB (-1: unlimited); the default warning threshold is a quarter of it.
    private const string HealthSql = """
        SELECT s.wal_status, s.safe_wal_size,
               (SELECT setting::bigint FROM pg_catalog.pg_settings WHERE name = 'max_slot_wal_keep_size')
        FROM pg_catalog.pg_replication_slots s
        WHERE s.slot_name = @slot
        """;

    private const long DefaultWarningDivisor = 4;

    /// <summary>The fatal error of a slot the server invalidated (shared with the stream's own error).</summary>
    public static string LostMessage(string slotName, string detail)
        => $"Replication slot '{slotName}' was invalidated by the server ({detail}): it held back more WAL than max_slot_wal_keep_size allows, "
            + "and the WAL it still needed was removed, so the changes since the last committed position are lost. Drop the slot "
            + $"(SELECT pg_drop_replication_slot('{slotName}')) and restart the pipeline to recreate it, resync clients (their changelog "
            + "has a gap), and raise max_slot_wal_keep_size (or find why the pipeline fell behind) so it does not happen again.";

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
            var health = await QueryAsync(aborting).ConfigureAwait(false);
            if (health is not var (walStatus, safeWalSize, keepMegabytes))
                throw new WalPipelineException(DroppedMessage(slotName));
            metrics.SlotHealth(walStatus, safeWalSize);
            if (walStatus == "lost")
                throw new WalPipelineException(LostMessage(slotName, "wal_status 'lost'"));

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

    private async Task<(string? WalStatus, long? SafeWalSize, long? KeepMegabytes)?> QueryAsync(CancellationToken cancellationToken)
    {
        var session = connection() ?? throw new InvalidOperationException("The slot health watch runs only while the slot lock is held.");
        await using var command = new NpgsqlCommand(HealthSql, session);
        command.Parameters.Add(new NpgsqlParameter<string>("slot", NpgsqlDbType.Text) { TypedValue = slotName });
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        if (!await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            return null;
        return (reader.IsDBNull(0) ? null : reader.GetString(0),
            reader.IsDBNull(1) ? null : reader.GetInt64(1),
            reader.IsDBNull(2) ? null : reader.GetInt64(2));
    }

    [LoggerMessage(EventId = EventIds.SlotHealthWarning, Level = LogLevel.Warning,
        Message = "Replication slot {Slot} is close to being invalidated ({Risk}): the server may remove WAL it still needs at the next checkpoint, "
            + "and the changes in it would be lost. Let the pipeline catch up (is it stalled? see slow-batch warnings and locks on the sidecar tables) "
            + "or raise max_slot_wal_keep_size")]
    private static partial void LogAtRisk(ILogger logger, string slot, string risk);

    [LoggerMessage(EventId = EventIds.SlotHealthRecovered, Level = LogLevel.Information, Message = "Replication slot {Slot} is out of danger again (wal_status {WalStatus})")]
    private static partial void LogRecovered(ILogger logger, string slot, string walStatus);
}
