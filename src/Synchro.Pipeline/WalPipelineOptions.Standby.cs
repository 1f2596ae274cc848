namespace Synchro.Pipeline;

// Decoding on a hot standby, PostgreSQL 16+ (docs/operations.md, "Decoding on a standby").
public sealed partial class WalPipelineOptions
{
    /// <summary>
    /// When <see cref="ConnectionString"/> names a hot standby: a connection string to the same database on its primary,
    /// where the pipeline writes its heartbeats and, while it creates the slot, asks for standby snapshots
    /// (<c>pg_log_standby_snapshot()</c>); a standby can write neither. Default null: the changelog's server when it is
    /// the standby's primary (same system identifier, not in recovery), reached in the source database.
    /// </summary>
    /// <remarks>
    /// A heartbeat must be written in the database the slot decodes, so this names that database. Ignored when the source
    /// is a primary. The role needs EXECUTE on <c>pg_logical_emit_message</c> and <c>pg_log_standby_snapshot</c>.
    /// </remarks>
    public string? PrimaryConnectionString { get; set; }
}
