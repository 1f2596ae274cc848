using Synchro.Pipeline.Protocol;

namespace Synchro.Pipeline;

/// <summary>A snapshot of a running pipeline (<see cref="WalPipeline.GetStatus"/>); counts are since the instance was created.</summary>
public sealed class WalPipelineStatus
{
    internal WalPipelineStatus()
    {
    }

    /// <summary>Where the pipeline is in its life.</summary>
    public WalPipelineState State { get; internal init; }

    /// <summary>
    /// The fatal error when <see cref="State"/> is <see cref="WalPipelineState.Failed"/>; the error being recovered from while
    /// <see cref="WalPipelineState.Reconnecting"/>, or while <see cref="WalPipelineState.Starting"/> after a failed attempt to start.
    /// </summary>
    public Exception? Failure { get; internal init; }

    /// <summary>The end of the last source transaction committed to the changelog (the position the server is told is flushed).</summary>
    public Lsn CommittedLsn { get; internal init; }

    /// <summary>The end of the server's WAL as of the last message received.</summary>
    public Lsn ServerWalEnd { get; internal init; }

    /// <summary>WAL bytes between <see cref="CommittedLsn"/> and <see cref="ServerWalEnd"/>: how far the changelog is behind the server.</summary>
    public long LagBytes { get; internal init; }

    /// <summary>How long ago the oldest source transaction handed to the writer and not yet committed was committed on the source; zero when the writer has nothing to do.</summary>
    public TimeSpan Lag { get; internal init; }

    /// <summary>pgoutput bytes received from the server.</summary>
    public long BytesReceived { get; internal init; }

    /// <summary>WAL bytes received but not yet decoded (bounded by <see cref="WalPipelineOptions.WalBufferBytes"/>).</summary>
    public long BufferedBytes { get; internal init; }

    /// <summary>Changes of registered tables decoded and handed to the writer.</summary>
    public long ChangesDecoded { get; internal init; }

    /// <summary>Changes of registered tables committed to the changelog.</summary>
    public long ChangesCommitted { get; internal init; }

    /// <summary>Source transactions committed to the changelog.</summary>
    public long Transactions { get; internal init; }

    /// <summary>Batches committed to the changelog.</summary>
    public long Batches { get; internal init; }

    /// <summary>Changelog rows written.</summary>
    public long ChangelogRows { get; internal init; }

    /// <summary>Changes whose bucket rule failed (recorded in <c>sync_rule_failures</c>).</summary>
    public long RuleFailures { get; internal init; }

    /// <summary>Reconnections after a lost connection or a retried failure, once the pipeline had started.</summary>
    public long Reconnects { get; internal init; }

    /// <summary>
    /// Attempts (to start, or to run again) that failed in a row with nothing committed in between; 0 when the last attempt
    /// got somewhere. Each is logged (event 1020 at start, 1004 or 1021 later).
    /// </summary>
    public int RetryAttempts { get; internal init; }

    /// <summary>When the first of <see cref="RetryAttempts"/> failed; null when there are none.</summary>
    public DateTimeOffset? RetryingSince { get; internal init; }

    /// <summary>Rows of the registered tables read by the initial snapshot load of this instance (<see cref="WalPipelineState.Snapshotting"/>); 0 when none ran.</summary>
    public long SnapshotRows { get; internal init; }

    /// <summary>When the last batch was committed, if any.</summary>
    public DateTimeOffset? LastBatchAt { get; internal init; }

    /// <summary>The slot's <c>wal_status</c> at the last health check (<see cref="WalPipelineOptions.SlotHealthInterval"/>): <c>reserved</c>, <c>extended</c>, <c>unreserved</c> (about to be invalidated) or <c>lost</c>; null before the first check.</summary>
    public string? SlotWalStatus { get; internal init; }

    /// <summary>The slot's <c>safe_wal_size</c> at the last health check: bytes of WAL the server may still write before the slot is in danger; null without <c>max_slot_wal_keep_size</c>.</summary>
    public long? SlotSafeWalSize { get; internal init; }

    /// <summary>
    /// Why the server invalidated the slot, as of the last health check (PostgreSQL 17+): <c>wal_removed</c>, <c>rows_removed</c>,
    /// <c>wal_level_insufficient</c> or (18) <c>idle_timeout</c>; null while the slot is valid, before 17 and before the first check.
    /// The pipeline stops on any of them (<see cref="WalPipelineState.Failed"/>, the fix in <see cref="Failure"/>).
    /// </summary>
    public string? SlotInvalidationReason { get; internal init; }

    /// <summary>Since when no consumer used the slot, as of the last health check (PostgreSQL 17+); null while one does.</summary>
    public DateTimeOffset? SlotInactiveSince { get; internal init; }

    /// <summary>Whether the slot is a failover slot (PostgreSQL 17+, <see cref="WalPipelineOptions.Failover"/>); null before 17 and before the first check.</summary>
    public bool? SlotFailover { get; internal init; }

    /// <summary>Whether the slot is a standby's synchronised copy of a failover slot (PostgreSQL 17+); null before 17 and before the first check.</summary>
    public bool? SlotSynced { get; internal init; }

    /// <summary>
    /// While <see cref="State"/> is <see cref="WalPipelineState.WaitingForLock"/>: who holds the lock this instance waits for (backend pid,
    /// <c>application_name</c>, client address, as far as this role may read <c>pg_stat_activity</c>); null otherwise.
    /// </summary>
    public string? LockHolder { get; internal init; }
}
