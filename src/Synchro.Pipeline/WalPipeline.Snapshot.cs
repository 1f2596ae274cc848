using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Npgsql;
using Synchro.Pipeline.Changelog;
using Synchro.Pipeline.Protocol;
using Synchro.Pipeline.Replication;
using Synchro.Pipeline.Maintenance;
using Synchro.Pipeline.Runtime;

namespace Synchro.Pipeline;

public sealed partial class WalPipeline
{
    // How long dropping an unfinished snapshot's slot waits for the walsender of the start that died to exit.
    private static readonly TimeSpan s_dropSlotTimeout = TimeSpan.FromSeconds(15);

    /// <summary>
    /// With <see cref="WalPipelineOptions.InitialSnapshot"/>: creates the slot (when missing) with an exported snapshot and
    /// loads the bucket edges of the existing rows from it before streaming starts.
    /// </summary>
    /// <remarks>
    /// Crash safety: the pending marker (position 0, see <see cref="ChangelogStore.SnapshotPendingPosition"/>) is committed
    /// before the slot is created and replaced by the slot's consistent point in the load's own transaction. So the slot a
    /// start finds is in one of three states: with a position (resume, no load), with the marker (a start died during its
    /// load: the slot is dropped and the load redone from a new one, because the snapshot died with that start), or with no
    /// row at all (created by someone else: streamed from, with a warning that existing rows have no edges).
    /// </remarks>
    /// <param name="slotExists">Whether the slot existed at start.</param>
    /// <param name="identity">The source, checked against the persisted position already; the pending marker is bound to it.</param>
    /// <param name="earlier">A position of an earlier slot of that name, when the slot was missing: the changes after it are not in the changelog.</param>
    /// <param name="cancellationToken">Cancels the load; a start that does not finish it leaves the marker.</param>
    private async Task PrepareSlotWithSnapshotAsync(bool slotExists, SourceIdentity identity, Lsn? earlier, CancellationToken cancellationToken)
    {
        Lsn? position;
        await using (var connection = await _changelog.OpenConnectionAsync(cancellationToken).ConfigureAwait(false))
            position = await ChangelogStore.LoadPositionAsync(connection, _options.SlotName, cancellationToken).ConfigureAwait(false);
        if (slotExists)
        {
            if (position is null)
            {
                LogSlotWithoutSnapshot(_logger, _options.SlotName);
                return;
            }
            if (position.Value.IsValid)
                return;
            LogSnapshotUnfinished(_logger, _options.SlotName);
            await DropUnfinishedSlotAsync(cancellationToken).ConfigureAwait(false);
        }

        // Invariant 9: written on the changelog lock's session, as the load is.
        var changelog = await _changelogLock!.EnsureAsync(cancellationToken).ConfigureAwait(false);
        await using (var transaction = await changelog.BeginTransactionAsync(cancellationToken).ConfigureAwait(false))
        {
            await using (var durable = new NpgsqlCommand("SET LOCAL synchronous_commit = on", changelog, transaction))
                await durable.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            await ChangelogStore.MarkSnapshotPendingAsync(changelog, _options.SlotName, identity, cancellationToken).ConfigureAwait(false);
            await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        }

        ExportedSnapshotSlot slot;
        try
        {
            var replicationString = await ReplicationConnectionStringAsync(_connections, _sourceConnectionString, cancellationToken).ConfigureAwait(false);
            slot = await CreatingSlotAsync(ct => ExportedSnapshotSlot.CreateAsync(_connections, replicationString, _options.SlotName, twoPhase: _options.TwoPhase, failover: _options.Failover, ct), cancellationToken).ConfigureAwait(false);
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.DuplicateObject)
        {
            throw new WalPipelineException($"Replication slot '{_options.SlotName}' was created by another process while this pipeline was creating it; run one pipeline per slot, then restart this one (it drops that slot and creates its own, since its snapshot load had not run).", e);
        }
        await using (slot.ConfigureAwait(false))
        {
            LogSnapshotStarting(_logger, _options.SlotName, slot.ConsistentPoint, slot.SnapshotName);
            if (earlier is { } before)
                LogSlotRecreatedAfterPosition(_logger, _options.SlotName, before, slot.ConsistentPoint);
            _metrics.SetState(WalPipelineState.Snapshotting);
            var loader = new EdgeSnapshotLoader(
                _source, _changelog, _options.SlotName, _options.Tables, _assigner,
                new ChangelogLimits(_options.MaxRecordIdBytes, _options.MaxBucketIdBytes), _options.MaxBatchRows, _metrics,
                _options.LoggerFactory.CreateLogger(LogCategory + ".Snapshot"), _options.SnapshotProgress)
            {
                TagOwnWrites = _options.TagOwnWrites,
                Lock = _changelogLock,
                Stopping = cancellationToken,
                Timeouts = _options.StatementTimeouts,
            };
            // A stop ends the load between chunks; its database calls are cancelled only past the stop's grace (see StageGroup).
            using var aborting = new CancellationTokenSource();
            await using (cancellationToken.Register(() => aborting.CancelAfter(StageGroup.StopGrace)).ConfigureAwait(false))
                await loader.LoadAsync(slot.SnapshotName, slot.ConsistentPoint, aborting.Token).ConfigureAwait(false);
            _metrics.SetState(WalPipelineState.Starting);
        }
    }

    /// <summary>Drops the slot a start that died during its snapshot load left; waits a little for that start's walsender to exit.</summary>
    private async Task DropUnfinishedSlotAsync(CancellationToken cancellationToken)
    {
        var started = Stopwatch.GetTimestamp();
        while (true)
        {
            try
            {
                await ReplicationSlots.DropAsync(_source, _options.SlotName, cancellationToken).ConfigureAwait(false);
                return;
            }
            catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.ObjectInUse && Stopwatch.GetElapsedTime(started) < s_dropSlotTimeout)
            {
                await Task.Delay(100, cancellationToken).ConfigureAwait(false);
            }
            catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.ObjectInUse)
            {
                throw new WalPipelineConfigurationException($"Replication slot '{_options.SlotName}' has an unfinished initial snapshot load and must be recreated, but another connection keeps using it; stop the other consumer of the slot and restart.", e);
            }
        }
    }

    [LoggerMessage(EventId = Diagnostics.EventIds.SnapshotSlotCreated, Level = LogLevel.Information, Message = "Created replication slot {Slot} at consistent point {Position}; loading the bucket edges of existing rows from its snapshot {Snapshot}")]
    private static partial void LogSnapshotStarting(ILogger logger, string slot, Lsn position, string snapshot);

    [LoggerMessage(EventId = Diagnostics.EventIds.UnfinishedSnapshotSlotDropped, Level = LogLevel.Warning, Message = "Replication slot {Slot} was left by a start whose initial snapshot load did not finish; dropping it and starting over with a new slot")]
    private static partial void LogSnapshotUnfinished(ILogger logger, string slot);

    [LoggerMessage(EventId = Diagnostics.EventIds.SlotWithoutSnapshot, Level = LogLevel.Warning,
        Message = "Replication slot {Slot} exists but this pipeline has no position for it, so it did not create it: no initial snapshot is loaded, and rows that existed before the slot have no bucket edges (their first owner change emits no delete in the old bucket). "
            + "To load them, drop the slot and restart (the pipeline recreates it and loads the snapshot); ignore this if the application populates sync_bucket_edges itself, or set InitialSnapshot off.")]
    private static partial void LogSlotWithoutSnapshot(ILogger logger, string slot);
}
