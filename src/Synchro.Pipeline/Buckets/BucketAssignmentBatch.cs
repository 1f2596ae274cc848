using Npgsql;
using Synchro.Pipeline.Postgres;
using Synchro.Pipeline.Registry;

namespace Synchro.Pipeline.Buckets;

/// <summary>The changes of one batch that need bucket decisions, and what an assigner may use to decide.</summary>
public sealed class BucketAssignmentBatch
{
    internal BucketAssignmentBatch(IReadOnlyList<BucketAssignment> changes, TableRegistry registry, NpgsqlConnection sourceConnection, BucketIdCache bucketIds)
    {
        Changes = changes;
        Registry = registry;
        SourceConnection = sourceConnection;
        BucketIds = bucketIds;
    }

    /// <summary>The writer's bucket id strings, for the built-in assigners.</summary>
    internal BucketIdCache BucketIds { get; }

    /// <summary>The <c>statement_timeout</c> of <see cref="SourceConnection"/>, which the assigners set for their kind of statement; null to leave it alone.</summary>
    internal SessionTimeout? SourceTimeout { get; init; }

    /// <summary>The changes, in commit order.</summary>
    public IReadOnlyList<BucketAssignment> Changes { get; }

    /// <summary>The registered tables.</summary>
    public TableRegistry Registry { get; }

    /// <summary>An open connection to the source database, for set-based lookups (current committed state).</summary>
    public NpgsqlConnection SourceConnection { get; }
}
