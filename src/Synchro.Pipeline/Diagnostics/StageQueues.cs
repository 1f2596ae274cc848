namespace Synchro.Pipeline.Diagnostics;

/// <summary>How the metrics look into one run's queues, without knowing what the stages put in them.</summary>
/// <param name="Items">Items waiting between the decoder and the writer.</param>
/// <param name="Receipts">Committed positions waiting for the committer.</param>
/// <param name="NextCommitTime">The source commit time of the first batch waiting for the writer; default when none.</param>
internal sealed record StageQueues(Func<int> Items, Func<int> Receipts, Func<DateTime> NextCommitTime);
