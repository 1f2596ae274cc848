using Synchro.Pipeline.Decoding.Items;
using Synchro.Pipeline.Protocol;

namespace Synchro.Pipeline.Decoding;

// The one transaction an operator asked to skip (synchro-pipeline skip --lsn), like ALTER SUBSCRIPTION ... SKIP.
internal sealed partial class ChangeDecoder
{
    // The transaction being skipped now; null otherwise.
    private SkippedTransaction? _skipped;

    /// <summary>The commit LSN of the transaction to skip; <see cref="Lsn.Invalid"/> for none.</summary>
    public Lsn SkipTransactionAt { get; init; }

    /// <summary>
    /// Starts skipping when the transaction committed at <paramref name="commitLsn"/> is the one asked for: what was
    /// decoded before it goes first, and its changes then fill batches of their own (<see cref="SkippedChanges"/>).
    /// </summary>
    private void StartSkipIfAsked(uint xid, Lsn commitLsn, DateTime commitTime)
    {
        if (!SkipTransactionAt.IsValid || commitLsn != SkipTransactionAt)
            return;
        if (_batch.Transactions > 0)
            CutBatch();
        _transactionStart = (_batch.Count, _batch.ValueMark);
        _skipped = new SkippedTransaction(xid, commitLsn, commitTime);
    }

    /// <summary>Sends the skipped transaction's changes decoded so far; the last time, with the position after its commit.</summary>
    private void SendSkipped(Lsn endLsn)
    {
        var skipped = _skipped!;
        SendMessages();
        if (endLsn.IsValid)
        {
            _sentPosition = Lsn.Max(_sentPosition, endLsn);
            _skipped = null;
        }
        _ready.Enqueue(new SkippedChanges(_batch, skipped, endLsn));
        _transactionStart = null;
        _batch = _pool.Rent();
    }
}
