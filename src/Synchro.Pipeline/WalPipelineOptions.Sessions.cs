using Synchro.Pipeline.Postgres;

namespace Synchro.Pipeline;

// The connection strings every session of the pipeline is opened with: search_path pinned (SessionSearchPath), so a table,
// function or operator planted in a schema the role's or database's search_path would reach is never used.
public sealed partial class WalPipelineOptions
{
    /// <summary>The source connection string with the source sessions' pinned search_path.</summary>
    internal string SourceSessionString => SessionSearchPath.Source(ConnectionString);

    /// <summary>The changelog connection string (the source one without it) with the changelog sessions' pinned search_path.</summary>
    internal string ChangelogSessionString => SessionSearchPath.Changelog(ChangelogConnectionString ?? ConnectionString);

    /// <summary>The schema of the sidecar tables: the first schema of the changelog connection string's Search Path, else public.</summary>
    internal string ChangelogSchemaName => SessionSearchPath.ChangelogSchema(ChangelogConnectionString ?? ConnectionString);
}
