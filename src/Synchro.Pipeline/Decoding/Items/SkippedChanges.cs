using Synchro.Pipeline.Protocol;

namespace Synchro.Pipeline.Decoding.Items;

/// <summary>
/// Changes of the source transaction an operator asked to skip (<c>synchro-pipeline skip --lsn</c>), in a batch of
/// their own: the writer keeps them in <c>sync_rule_failures</c> (where <c>replay-failures</c> reaches them) instead of
/// the changelog. A large transaction comes in several; the last has <see cref="EndLsn"/>, the position after it.
/// </summary>
internal sealed class SkippedChanges(ChangeBatch changes, SkippedTransaction transaction, Lsn endLsn = default) : DecodedItem
{
    /// <summary>The changes; the writer releases the batch.</summary>
    public ChangeBatch Changes { get; } = changes;

    public SkippedTransaction Transaction { get; } = transaction;

    /// <summary>The end of the transaction's commit record on its last item; <see cref="Lsn.Invalid"/> before.</summary>
    public Lsn EndLsn { get; } = endLsn;

    public bool EndsTransaction => EndLsn.IsValid;
}

/// <summary>What identifies a skipped transaction, and what of it could not be kept.</summary>
internal sealed class SkippedTransaction(uint xid, Lsn commitLsn, DateTime commitTime)
{
    public uint Xid { get; } = xid;

    /// <summary>The LSN of its commit record: the one the skip was asked for.</summary>
    public Lsn CommitLsn { get; } = commitLsn;

    public DateTime CommitTime { get; } = commitTime;

    /// <summary>Rows of registered tables that could not be decoded under the registration (a registered column missing).</summary>
    public int Undecodable { get; set; }

    /// <summary>TRUNCATEs of registered tables in it, which are skipped with it.</summary>
    public int Truncates { get; set; }
}
