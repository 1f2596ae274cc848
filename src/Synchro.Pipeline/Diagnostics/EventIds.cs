namespace Synchro.Pipeline.Diagnostics;

/// <summary>The id of every event the library logs, in one place: operators alert on these numbers.</summary>
/// <remarks>
/// Ranges by stage: 1000–1099 the pipeline's lifecycle and its replication connection (category
/// <c>Synchro.Pipeline</c>); 1200–1299 creating the slot and the lifecycle of its initial snapshot (same category);
/// 2xxx the decoder (<c>.Decoder</c>); 3xxx the writer (<c>.Writer</c>); 4xxx the committer and heartbeats
/// (<c>.Committer</c>); 6xxx the initial snapshot load; 7050–7099 compaction (<c>.Compaction</c>). The CLI's own events are below 1000 (its <c>CliEventIds</c>).
/// A number, once published, keeps its meaning: a retired event leaves a gap, never a reused id.
/// </remarks>
internal static class EventIds
{
    // Lifecycle and replication: 1000–1099.

    /// <summary>Starting: slot, publication, number of tables, source host and user.</summary>
    public const int Starting = 1000;

    /// <summary>Streaming from the slot after a position (each start and reconnect).</summary>
    public const int Replicating = 1001;

    /// <summary>Created the replication slot.</summary>
    public const int SlotCreated = 1002;

    /// <summary>A start-up check's warning.</summary>
    public const int StartupWarning = 1003;

    /// <summary>Lost the connection; reconnecting from the persisted position.</summary>
    public const int Reconnecting = 1004;

    /// <summary>Stopped on a fatal error, with what to do.</summary>
    public const int FatalError = 1005;

    /// <summary>Stopped consuming the slot.</summary>
    public const int Stopped = 1006;

    /// <summary>The database is not set up for the pipeline: every problem and its fix.</summary>
    public const int DatabaseNotSetUp = 1007;

    /// <summary>On a clean stop, confirmed the last committed position to the server.</summary>
    public const int ConfirmedOnStop = 1008;

    /// <summary>On a clean stop, could not confirm the last committed position to the server.</summary>
    public const int ConfirmOnStopFailed = 1009;

    /// <summary>The slot nears invalidation: <c>wal_status</c> 'unreserved' or <c>safe_wal_size</c> below the threshold.</summary>
    public const int SlotHealthWarning = 1010;

    /// <summary>The slot is out of danger again.</summary>
    public const int SlotHealthRecovered = 1011;

    /// <summary>The server enables two-phase decoding on a slot created without it, from this stream's start.</summary>
    public const int TwoPhaseEnabledOnSlot = 1012;

    /// <summary>The persisted position does not belong to the source (another cluster, database or timeline, ahead of its WAL, behind the slot): refused, with the recovery.</summary>
    public const int PositionRefused = 1013;

    /// <summary>On a clean stop, the last position was not confirmed because the server has not written it.</summary>
    public const int ConfirmOnStopRefused = 1014;

    /// <summary>A run starts with a request to skip a transaction pending.</summary>
    public const int SkipPending = 1015;

    /// <summary>At start (or after a lost slot lock), the slot is held by another session or walsender: waiting for it, naming the holder.</summary>
    public const int SlotWaiting = 1016;

    /// <summary>The slot was released after a wait: the pipeline holds it now.</summary>
    public const int SlotAcquired = 1017;

    /// <summary>A stop's grace ran out: the work still in flight is cancelled (a batch rolls back).</summary>
    public const int StopGraceExpired = 1018;

    /// <summary>A stop could not have the server end the replication stream; Npgsql's own cancellation ends it after the grace.</summary>
    public const int StreamEndFailed = 1019;

    /// <summary>An attempt to start failed on an error a later one may not meet (server starting, stopping, unreachable, out of connections): the attempt, the wait, the error.</summary>
    public const int StartRetrying = 1020;

    /// <summary>A statement timed out, deadlocked, failed to serialize, found a lock unavailable or was cancelled by another session: retry N of MaxStatementRetries, the wait, what to check.</summary>
    public const int ConflictRetrying = 1021;

    /// <summary>A migration of the sidecar tables was pending, and the start ran it: what was missing, in which schema.</summary>
    public const int ChangelogMigrated = 1030;

    /// <summary>The changelog lock's session was lost or replaced; the lock was taken again before writing.</summary>
    public const int ChangelogLockTakenAgain = 1031;

    // Slot creation and the initial snapshot's lifecycle: 1200–1299.

    /// <summary>Created the slot with an exported snapshot; loading the bucket edges of existing rows.</summary>
    public const int SnapshotSlotCreated = 1201;

    /// <summary>A slot left by an unfinished snapshot load was dropped, to be created again.</summary>
    public const int UnfinishedSnapshotSlotDropped = 1202;

    /// <summary>The slot exists without a position: not created by the pipeline, so no initial snapshot was loaded.</summary>
    public const int SlotWithoutSnapshot = 1203;

    /// <summary>The slot did not exist and was created again while a position of the earlier slot was persisted: the changes in between are not in the changelog.</summary>
    public const int SlotRecreatedAfterPosition = 1204;

    // Decoder: 2xxx.

    /// <summary>A DELETE without its id column (replica identity) was skipped.</summary>
    public const int UnattributableDelete = 2001;

    /// <summary>A transactional logical message of a streamed or prepared transaction was not delivered.</summary>
    public const int SpilledMessageNotDelivered = 2003;

    // Spill files (2004–2009): the decoder's, and the stored prepared transactions the writer reads back.

    /// <summary>Spill files an earlier connection left (a kill, a crash) were removed; their transactions are sent again.</summary>
    public const int SpillFilesLeftRemoved = 2004;

    /// <summary>The spill directory was open to other users; its mode was set to 0700.</summary>
    public const int SpillDirectoryTightened = 2005;

    /// <summary>A local spill file was damaged: the transaction is read again from the server (reconnecting).</summary>
    public const int SpillFileDamaged = 2006;

    /// <summary>A stored prepared transaction skipped on purpose was damaged: the changes after the damage could not be kept.</summary>
    public const int StoredPreparedTransactionDamaged = 2007;

    // Writer: 3xxx.

    /// <summary>Changes failed their bucket rule and went to <c>sync_rule_failures</c>.</summary>
    public const int RuleFailures = 3001;

    /// <summary>A batch took longer than <see cref="WalPipelineOptions.SlowBatchThreshold"/> to write.</summary>
    public const int SlowBatch = 3002;

    /// <summary>A TRUNCATE was applied to the changelog.</summary>
    public const int Truncated = 3003;

    /// <summary>The transaction an operator asked to skip was skipped; its changes were kept in <c>sync_rule_failures</c>.</summary>
    public const int TransactionSkipped = 3004;

    /// <summary>The changelog writes in the source database could not be marked with the pipeline's replication origin.</summary>
    public const int OwnWritesNotTagged = 3005;

    /// <summary>The changelog refused changes of a batch (a value too large for an index, a constraint): isolated into <c>sync_rule_failures</c>, the rest written.</summary>
    public const int ChangesRefused = 3010;

    // Parent moves cascading to children: 3020–3039.

    /// <summary>A batch moved records with inheriting children: descendants read, rows written, duration (Debug).</summary>
    public const int ParentMovesCascaded = 3020;

    // Committer and heartbeats: 4xxx.

    /// <summary>Confirmed a position to the server.</summary>
    public const int PositionConfirmed = 4001;

    /// <summary>Idle: wrote a heartbeat message into the WAL.</summary>
    public const int HeartbeatWritten = 4002;

    /// <summary>A heartbeat could not be written.</summary>
    public const int HeartbeatFailed = 4003;

    // Initial snapshot load: 6xxx.

    /// <summary>A table's load progress: rows done, estimate, rate.</summary>
    public const int SnapshotProgress = 6001;

    /// <summary>A table's load is done.</summary>
    public const int SnapshotTableLoaded = 6002;

    /// <summary>The initial snapshot committed: rows, edges, rule failures, position.</summary>
    public const int SnapshotCommitted = 6003;

    /// <summary>Rows of a chunk failed their bucket rule (recorded in <c>sync_rule_failures</c>).</summary>
    public const int SnapshotRuleFailures = 6004;

    // Compaction: 7050–7099 (category Synchro.Pipeline.Compaction).

    /// <summary>A compaction run finished: buckets visited, rows removed by kind, horizons raised, duration.</summary>
    public const int CompactionFinished = 7050;

    /// <summary>A compaction did nothing: another one of the same changelog was running.</summary>
    public const int CompactionAlreadyRunning = 7051;

    /// <summary>A bucket had more records than MaxTrackedRecords: compacted only for its newest records.</summary>
    public const int CompactionBucketPartial = 7052;

    /// <summary>A compaction run failed: what happened and what to do; what it removed stays removed, the changelog is correct.</summary>
    public const int CompactionFailed = 7053;

    // Decoding on a standby: 1090–1099 (lifecycle) and 1205–1219 (slot creation).

    /// <summary>Creating the slot on a standby with no primary known: it waits for the primary's own running-xacts record.</summary>
    public const int StandbySlotWaiting = 1205;

    /// <summary>Creating the slot on a standby: pg_log_standby_snapshot() could not be run on the primary.</summary>
    public const int StandbySnapshotFailed = 1206;

    /// <summary>The source is a standby: heartbeats and standby snapshots are written on its primary.</summary>
    public const int StandbySource = 1090;

    // Failover confirm rule and primary resolution (docs/failover.md): 1070–1089.

    /// <summary>Failover is on but the primary's <c>synchronized_standby_slots</c> is empty: confirms wait for no standby, nothing is protected.</summary>
    public const int FailoverNoStandbySlots = 1070;

    /// <summary>A position has waited long for the standbys of <c>synchronized_standby_slots</c> to flush its changelog commit; WAL is retained meanwhile.</summary>
    public const int FailoverConfirmHeld = 1071;

    /// <summary>The stop-time confirm was skipped: the standbys had not flushed the last changelog commit.</summary>
    public const int FailoverConfirmOnStopHeld = 1072;

    /// <summary>The replication connection goes to the host a multi-host connection string chose.</summary>
    public const int ReplicationHostResolved = 1073;

    // An instance waiting for the lock (WalPipelineOptions.WaitForLock): 1100–1119.

    /// <summary>WaitForLock: another instance holds the slot lock; this one waits, naming the holder (pid, application_name, client).</summary>
    public const int LockWaiting = 1100;

    /// <summary>WaitForLock: the slot lock changed hands while this instance waited; it names the new holder and keeps waiting.</summary>
    public const int LockHolderChanged = 1101;

    /// <summary>WaitForLock: the active instance let go of the slot; this one holds it now, after waiting so many seconds, and resumes from the persisted position.</summary>
    public const int LockTakenOver = 1102;

    /// <summary>WaitForLock: the changelog lock is held by another session (a pipeline of another slot, or the last holder's session not yet ended); waiting for it.</summary>
    public const int ChangelogLockWaiting = 1103;

    /// <summary>WaitForLock: the changelog lock was taken after a wait.</summary>
    public const int ChangelogLockTaken = 1104;
}
