using Synchro.Pipeline.Protocol;

namespace Synchro.Pipeline.Pipeline;

/// <summary>
/// The changes of one or more whole source transactions, in commit order — or one chunk of a
/// source transaction larger than the batch limits.
/// </summary>
/// <remarks>
/// Invariant: a batch never ends inside a transaction unless <see cref="EndsTransaction"/> is false,
/// and then the next batch continues that same transaction. The writer keeps its database
/// transaction open across such chunks and commits (with the position) only at the chunk that ends it.
/// </remarks>
internal sealed class ChangeBatch
{
    public List<DecodedChange> Changes { get; } = [];

    /// <summary>The end LSN of the last source transaction completed in this batch; the position to persist.</summary>
    public Lsn EndLsn { get; set; }

    /// <summary>False when the batch stops in the middle of a source transaction (a chunk of a large one).</summary>
    public bool EndsTransaction { get; set; } = true;

    /// <summary>Source transactions completed in this batch.</summary>
    public int Transactions { get; set; }

    /// <summary>Source commit time of the first transaction with a part in this batch; default for a heartbeat's empty batch.</summary>
    public DateTime FirstCommitTime { get; set; }

    /// <summary>Source commit times of the transactions completed in this batch, for the latency histogram.</summary>
    public List<DateTime> CommitTimes { get; } = [];

    /// <summary>Approximate pgoutput bytes of the changes, for the byte limit.</summary>
    public long Bytes { get; set; }
}
