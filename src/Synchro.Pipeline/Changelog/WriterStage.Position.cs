using Npgsql;
using Synchro.Pipeline.Protocol;
using Synchro.Pipeline.Replication;

namespace Synchro.Pipeline.Changelog;

internal sealed partial class WriterStage
{
    /// <summary>The source this run streams from, identified before it started: every position saved is bound to it (invariant 8).</summary>
    public required SourceIdentity Source { get; init; }

    /// <summary>Invariant 10: the changelog writes carry the pipeline's replication origin when they go into the source database.</summary>
    public bool TagOwnWrites { get; init; }

    /// <summary>Invariant 1: the position, and the source it belongs to, in the open changelog transaction.</summary>
    private Task SavePositionAsync(NpgsqlConnection connection, Lsn position, CancellationToken cancellationToken)
        => ChangelogStore.SavePositionAsync(connection, slotName, Source, position, cancellationToken);
}
