namespace Synchro.Pipeline.Cli.Status;

/// <summary>What <c>status</c> found, printed as a table or, with <c>--json</c>, as one JSON object (snake_case keys, stable: absent values are null).</summary>
internal sealed class StatusReport
{
    /// <summary>The one-line summary, derived from the same facts as the exit code.</summary>
    public required StatusVerdict Verdict { get; init; }

    public required string SlotName { get; init; }

    /// <summary>The source database, <c>host:port/database as user</c>.</summary>
    public required string Source { get; init; }

    /// <summary>The server's current WAL position (its last replayed one on a standby), as <c>X/Y</c>.</summary>
    public required string ServerWalLsn { get; init; }

    public required bool InRecovery { get; init; }

    public required SlotReport Slot { get; init; }

    public required ChangelogReport Changelog { get; init; }
}

/// <summary>The slot as <c>pg_replication_slots</c> and <c>pg_stat_replication</c> show it; all null but <see cref="Exists"/> when it does not exist.</summary>
internal sealed class SlotReport
{
    public required bool Exists { get; init; }

    public string? SlotType { get; init; }

    public string? Plugin { get; init; }

    public string? Database { get; init; }

    public bool? Active { get; init; }

    public int? ActivePid { get; init; }

    /// <summary><c>reserved</c>, <c>extended</c>, <c>unreserved</c> or <c>lost</c> (invalidated; <see cref="InvalidationReason"/> says why on 17+).</summary>
    public string? WalStatus { get; init; }

    /// <summary>Bytes of WAL that can still be written before the slot is in danger of being invalidated; null when unlimited.</summary>
    public long? SafeWalSize { get; init; }

    public bool? TwoPhase { get; init; }

    /// <summary>
    /// Why the server invalidated the slot (PostgreSQL 17+): <c>wal_removed</c>, <c>rows_removed</c>, <c>wal_level_insufficient</c>,
    /// <c>idle_timeout</c> (18); null while it is valid, or before 17 (where <see cref="WalStatus"/> 'lost' is all there is).
    /// </summary>
    public string? InvalidationReason { get; init; }

    /// <summary>Since when no consumer used the slot (PostgreSQL 17+); null while one does.</summary>
    public DateTimeOffset? InactiveSince { get; init; }

    /// <summary>Whether the slot is a failover slot, kept on standbys with <c>sync_replication_slots</c> (PostgreSQL 17+).</summary>
    public bool? Failover { get; init; }

    /// <summary>Whether the slot is a standby's synchronised copy of a primary's failover slot (PostgreSQL 17+).</summary>
    public bool? Synced { get; init; }

    public string? RestartLsn { get; init; }

    /// <summary>The position the consumer last confirmed to the server.</summary>
    public string? ConfirmedFlushLsn { get; init; }

    /// <summary>WAL bytes between <see cref="ConfirmedFlushLsn"/> and the server's current position.</summary>
    public long? LagBytes { get; init; }

    /// <summary>WAL bytes the slot keeps on the server: between <see cref="RestartLsn"/> and the current position.</summary>
    public long? RetainedWalBytes { get; init; }

    /// <summary>The consuming walsender's state (<c>startup</c>, <c>catchup</c>, <c>streaming</c>), when one is active.</summary>
    public string? ClientState { get; init; }

    /// <summary>When the consumer last sent a status update.</summary>
    public DateTimeOffset? ClientReplyAt { get; init; }

    /// <summary>
    /// Seconds between the server writing recent WAL and the consumer confirming it flushed (<c>pg_stat_replication.flush_lag</c>);
    /// null without a consumer, or once it has caught up and nothing new is written.
    /// </summary>
    public double? ClientFlushLagSeconds { get; init; }

    /// <summary>The <see cref="SafeWalSize"/> below which the verdict warns (<c>SlotSafeWalSizeWarning</c>, else a quarter of <c>max_slot_wal_keep_size</c>); null when there is none.</summary>
    public long? SafeWalSizeWarning { get; init; }
}

/// <summary>The sidecar tables on the changelog database; all null but <see cref="TablesExist"/> and <see cref="MissingTables"/> before the migration.</summary>
internal sealed class ChangelogReport
{
    /// <summary>The changelog database, <c>host:port/database as user</c>.</summary>
    public required string Target { get; init; }

    public required bool TablesExist { get; init; }

    public required IReadOnlyList<string> MissingTables { get; init; }

    /// <summary>The slot's position in <c>sync_wal_position</c>: the end of the last source transaction in the changelog.</summary>
    public string? PersistedLsn { get; init; }

    public DateTimeOffset? PersistedAt { get; init; }

    /// <summary>Bytes by which the persisted position is past the slot's confirmed_flush_lsn (negative when behind).</summary>
    public long? PersistedAheadOfSlotBytes { get; init; }

    /// <summary>
    /// Why the pipeline refuses the persisted position (invariant 8: another cluster, database or timeline, ahead of the
    /// server's WAL, behind the slot), each with its recovery; empty when it fits or there is none.
    /// </summary>
    public IReadOnlyList<string> PositionProblems { get; init; } = [];

    /// <summary>Why the position could not be checked against the server (no replication access, say); null when it was, or there is none.</summary>
    public string? PositionUnchecked { get; init; }

    public long? LastSeq { get; init; }

    public DateTimeOffset? LastRowAt { get; init; }

    /// <summary>The planner's estimate of the changelog's rows (<c>pg_class.reltuples</c>); null before the first ANALYZE.</summary>
    public long? ApproximateRows { get; init; }

    /// <summary>The changelog's size with its indexes and TOAST.</summary>
    public long? TotalBytes { get; init; }

    public long? RuleFailures { get; init; }

    public DateTimeOffset? LastRuleFailureAt { get; init; }

    public ChangelogReport WithPositionCheck(IReadOnlyList<string> problems, string? notChecked) => new()
    {
        Target = Target,
        TablesExist = TablesExist,
        MissingTables = MissingTables,
        PersistedLsn = PersistedLsn,
        PersistedAt = PersistedAt,
        PersistedAheadOfSlotBytes = PersistedAheadOfSlotBytes,
        PositionProblems = problems,
        PositionUnchecked = notChecked,
        LastSeq = LastSeq,
        LastRowAt = LastRowAt,
        ApproximateRows = ApproximateRows,
        TotalBytes = TotalBytes,
        RuleFailures = RuleFailures,
        LastRuleFailureAt = LastRuleFailureAt,
    };
}
