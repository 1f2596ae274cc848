namespace Synchro.Pipeline;

// Compaction on a schedule inside the running pipeline (Compaction/ChangelogCompactor).
public sealed partial class WalPipelineOptions
{
    /// <summary>
    /// How often the running pipeline compacts its changelog (docs/operations.md#compaction): the first run one interval
    /// after the pipeline starts streaming, each next one an interval after the last ended. Default null: off, as is <see cref="TimeSpan.Zero"/> (run
    /// <c>synchro-pipeline compact</c> on a schedule of your own instead).
    /// </summary>
    /// <remarks>
    /// Compaction runs on a connection of its own, never the writer's session, and only deletes rows, so the writer never
    /// waits for it. It stops with the pipeline (between chunks; a chunk still running at the end of the stop's grace is
    /// rolled back). A run that fails is logged (event 7053) and the next one runs at the next interval; it never stops the
    /// pipeline. The changelog role then needs <c>DELETE</c> on <c>sync_changelog</c> and <c>INSERT</c>, <c>UPDATE</c> on
    /// <c>sync_bucket_horizons</c> and <c>sync_compaction_state</c>.
    /// </remarks>
    public TimeSpan? CompactionInterval { get; set; }

    /// <summary>
    /// How long compaction keeps a delete row that is the latest of its record in its bucket; a client whose cursor is older
    /// must resync the bucket. Default 7 days. Used by <see cref="CompactionInterval"/>'s runs.
    /// </summary>
    public TimeSpan DeleteRetention { get; set; } = Compaction.ChangelogCompactionOptions.DefaultDeleteRetention;

    private void FindCompactionProblems(List<string> problems)
    {
        if (CompactionInterval is { } interval && interval != TimeSpan.Zero && (interval < TimeSpan.FromMilliseconds(100) || interval > TimeSpan.FromDays(7)))
            problems.Add($"{nameof(CompactionInterval)} is {interval}; it must be 0 or unset (off), or between 100 ms and 7 days");
        if (DeleteRetention < TimeSpan.Zero || DeleteRetention > TimeSpan.FromDays(36_500))
            problems.Add($"{nameof(DeleteRetention)} is {DeleteRetention}; it must be between 0 and 100 years");
    }
}
