namespace Synchro.Pipeline.Compaction;

/// <summary>What one <see cref="ChangelogCompactor.CompactAsync(CancellationToken)"/> did.</summary>
public sealed class ChangelogCompactionResult
{
    internal ChangelogCompactionResult()
    {
    }

    /// <summary>
    /// Another compaction of the same changelog was running, so this one did nothing (every count is 0). Not an error:
    /// the other run covers the changelog.
    /// </summary>
    public bool AnotherRunning { get; internal set; }

    /// <summary>The high-water mark the run compacted through: the largest <c>seq</c> when it started. Rows after it were left for the next run.</summary>
    public long CompactedThroughSeq { get; internal set; }

    /// <summary>The largest <c>seq</c> older than the delete retention when the run started: latest delete rows at or below it were removed.</summary>
    public long PurgedThroughSeq { get; internal set; }

    /// <summary>Buckets whose rows the run read.</summary>
    public long BucketsVisited { get; internal set; }

    /// <summary>Rows removed because a later row of the same record in the same bucket exists.</summary>
    public long SupersededRowsRemoved { get; internal set; }

    /// <summary>Delete rows removed because they were the latest of their record and older than the retention.</summary>
    public long DeletesRemoved { get; internal set; }

    /// <summary>Buckets whose horizon the run raised (those where it removed a delete row).</summary>
    public long HorizonsRaised { get; internal set; }

    /// <summary>Buckets with more records than <see cref="ChangelogCompactionOptions.MaxTrackedRecords"/>: compacted only for their newest records.</summary>
    public long BucketsLeftPartial { get; internal set; }

    /// <summary>Rows removed in all: <see cref="SupersededRowsRemoved"/> + <see cref="DeletesRemoved"/>.</summary>
    public long RowsRemoved => SupersededRowsRemoved + DeletesRemoved;

    /// <summary>How long the run took.</summary>
    public TimeSpan Duration { get; internal set; }
}
