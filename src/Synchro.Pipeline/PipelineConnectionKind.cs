namespace Synchro.Pipeline;

/// <summary>
/// Which of the pipeline's connections a data source is built for: passed to <see cref="WalPipelineOptions.ConfigureDataSource"/>
/// and <see cref="WalPipelineOptions.PasswordProvider"/>, so that each may differ (another role, another certificate).
/// </summary>
public enum PipelineConnectionKind
{
    /// <summary>Pooled sessions on the source database: checks, heartbeats, reads of the source during a batch, slot maintenance.</summary>
    Source,

    /// <summary>Pooled sessions on the changelog database (the source database unless <see cref="WalPipelineOptions.ChangelogConnectionString"/> is set).</summary>
    Changelog,

    /// <summary>
    /// The replication connection to the source (a walsender): the stream, the exported-snapshot slot creation, the server's
    /// identification. Npgsql opens it from a connection string, not from a data source: see
    /// <see cref="WalPipelineOptions.ConfigureDataSource"/> for what of the builder reaches it.
    /// </summary>
    Replication,

    /// <summary>The unpooled source session that holds the slot lock (one consumer per slot) for as long as the pipeline runs.</summary>
    SlotLock,

    /// <summary>The unpooled changelog session that holds the changelog lock (one writer per changelog) and writes every batch.</summary>
    ChangelogLock,

    /// <summary>The source database on the primary, when the source is a hot standby (<see cref="WalPipelineOptions.PrimaryConnectionString"/>).</summary>
    Primary,

    /// <summary>A standby checked for slot synchronisation (<see cref="WalPipelineOptions.FailoverStandbys"/>, the other hosts of the source).</summary>
    Standby,
}
