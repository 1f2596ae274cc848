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
}
