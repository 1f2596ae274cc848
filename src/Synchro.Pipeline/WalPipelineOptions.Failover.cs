namespace Synchro.Pipeline;

// Surviving a primary failover with PostgreSQL 17+ failover slots (docs/failover.md).
public sealed partial class WalPipelineOptions
{
    /// <summary>
    /// Make the replication slot a failover slot (PostgreSQL 17+: created with <c>FAILOVER</c>, or switched on for an
    /// existing slot), so a standby with <c>sync_replication_slots</c> keeps a copy and the pipeline resumes on it after a
    /// promotion. Default false.
    /// </summary>
    /// <remarks>
    /// With the changelog in the source cluster (the default), a position is confirmed to the server only once the changelog
    /// commit that recorded it has been flushed by every standby named in the primary's <c>synchronized_standby_slots</c>, so a
    /// promoted standby never resumes past changes whose changelog rows it does not have (docs/failover.md). Set
    /// <c>synchronized_standby_slots</c> on the primary to the physical slots of the standbys that may be promoted.
    /// </remarks>
    public bool Failover { get; set; }

    /// <summary>
    /// Connection strings of the standbys that may take over, for <see cref="WalPipeline.CheckAsync"/> to verify their slot
    /// synchronisation (<c>sync_replication_slots</c>, <c>hot_standby_feedback</c>, <c>primary_slot_name</c> among the
    /// primary's <c>synchronized_standby_slots</c>, a <c>dbname</c> in <c>primary_conninfo</c>, <c>wal_level</c>). Used only
    /// with <see cref="Failover"/>, beside the hosts of a multi-host <see cref="ConnectionString"/> that are in recovery.
    /// Empty by default; the pipeline never streams from them.
    /// </summary>
    public IList<string> FailoverStandbys { get; } = new List<string>();

    /// <summary>The failover confirm rule; off only to show what it prevents (tests).</summary>
    internal bool ConfirmAfterStandbys { get; set; } = true;
}
