namespace Synchro.Pipeline.LoadHarness.Idle;

/// <summary>
/// The pipeline running for a fixed time with nothing else writing: what it still costs. Counts are the differences
/// between the window's start and end.
/// </summary>
internal sealed record IdleResult
{
    public int Seconds { get; init; }

    /// <summary>WAL written in the window (<c>pg_current_wal_insert_lsn()</c> at its end minus at its start).</summary>
    public long WalBytes { get; init; }

    /// <summary>Changelog transactions committed by the pipeline's writer that carried source transactions (<see cref="WalPipelineStatus.Batches"/>).</summary>
    public long Batches { get; init; }

    /// <summary>Source transactions those batches committed (<see cref="WalPipelineStatus.Transactions"/>); changes of the registered tables among them.</summary>
    public long Transactions { get; init; }
    public long ChangesCommitted { get; init; }

    /// <summary>
    /// Times the persisted position moved (<see cref="WalPipelineStatus.CommittedLsn"/> changed, read every 10 ms: two
    /// moves within one reading count as one) and how far it moved in all.
    /// </summary>
    public long PositionMoves { get; init; }
    public long PositionAdvanceBytes { get; init; }

    /// <summary>
    /// Rows inserted and updated in <c>sync_wal_position</c> as the server counts them (<c>pg_stat_user_tables</c>):
    /// every position write, moved or not (heartbeat commits included). A backend reports its counts at most once a
    /// second, so both ends of the window may lag by that much.
    /// </summary>
    public long PositionWrites { get; init; }

    /// <summary>CPU of the walsender serving the pipeline over the window.</summary>
    public double? WalsenderCpuSeconds { get; init; }
    public int? WalsenderProcesses { get; init; }
    public long Reconnects { get; init; }

    /// <summary>What autovacuum workers were seen doing in the window (read every 100 ms): WAL in <see cref="WalBytes"/> that is not the pipeline's.</summary>
    public IReadOnlyList<string> Autovacuum { get; init; } = [];
    public string? Error { get; init; }

    public double? WalBytesPerSecond => Seconds > 0 ? (double)WalBytes / Seconds : null;
    public double? BatchesPerSecond => Seconds > 0 ? (double)Batches / Seconds : null;
    public double? PositionMovesPerSecond => Seconds > 0 ? (double)PositionMoves / Seconds : null;
}
