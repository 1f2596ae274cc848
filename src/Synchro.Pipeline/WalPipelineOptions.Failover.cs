namespace Synchro.Pipeline;

// Surviving a primary failover with PostgreSQL 17+ failover slots (docs/failover.md).
public sealed partial class WalPipelineOptions
{
    /// <summary>
    /// Make the replication slot a failover slot (PostgreSQL 17+: created with <c>FAILOVER</c>, or switched on for an
    /// existing slot), so a standby with <c>sync_replication_slots</c> keeps a copy and the pipeline resumes on it after a
    /// promotion. Default false.
    /// </summary>
    public bool Failover { get; set; }

    /// <summary>
    /// Connection strings of the standbys that may take over, for <see cref="WalPipeline.CheckAsync"/> to verify their slot
    /// synchronisation (<c>sync_replication_slots</c>, <c>hot_standby_feedback</c>, <c>primary_slot_name</c> among the
    /// primary's <c>synchronized_standby_slots</c>, a <c>dbname</c> in <c>primary_conninfo</c>, <c>wal_level</c>). Used only
    /// with <see cref="Failover"/>, beside the hosts of a multi-host <see cref="ConnectionString"/> that are in recovery.
    /// Empty by default; the pipeline never streams from them.
    /// </summary>
    public IList<string> FailoverStandbys { get; } = new List<string>();
}
