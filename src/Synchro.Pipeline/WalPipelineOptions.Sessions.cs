using Synchro.Pipeline.Postgres;
using Synchro.Pipeline.Replication;

namespace Synchro.Pipeline;

// The connection strings every session of the pipeline is opened with: search_path pinned (SessionSearchPath), so a table,
// function or operator planted in a schema the role's or database's search_path would reach is never used; and with several
// hosts, each host's role checked again within a second (ReplicationHost.WithPromptRecheck), so a promoted standby is found.
public sealed partial class WalPipelineOptions
{
    /// <summary>The source connection string with the source sessions' pinned search_path.</summary>
    internal string SourceSessionString => ReplicationHost.WithPromptRecheck(SessionSearchPath.Source(ConnectionString));

    /// <summary>The changelog connection string (the source one without it) with the changelog sessions' pinned search_path.</summary>
    internal string ChangelogSessionString => ReplicationHost.WithPromptRecheck(SessionSearchPath.Changelog(ChangelogConnectionString ?? ConnectionString));

    /// <summary>The schema of the sidecar tables: the first schema of the changelog connection string's Search Path, else public.</summary>
    internal string ChangelogSchemaName => SessionSearchPath.ChangelogSchema(ChangelogConnectionString ?? ConnectionString);
}
