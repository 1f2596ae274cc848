using Synchro.Pipeline.Decoding;
using Synchro.Pipeline.Buckets;

namespace Synchro.Pipeline.Changelog;

/// <summary>The assignments of one batch's changes, reused from batch to batch by their single owner (the writer, the snapshot load).</summary>
internal sealed class BucketAssignmentPool
{
    private BucketAssignment[] _items = [];

    /// <summary>
    /// Assignment <c>i</c> for change <c>i</c> of <paramref name="batch"/>, its record id taken from
    /// <paramref name="keys"/> when given (strings the caller made already), else made from the batch.
    /// </summary>
    public ArraySegment<BucketAssignment> For(ChangeBatch batch, List<RecordKey>? keys = null)
    {
        if (_items.Length < batch.Count)
            Array.Resize(ref _items, Math.Max(batch.Count, _items.Length * 2));
        for (var i = 0; i < batch.Count; i++)
        {
            var recordId = keys is null ? batch.RecordId(i) : keys[i].RecordId;
            if (_items[i] is { } reused)
                reused.Reset(batch, i, recordId);
            else
                _items[i] = new BucketAssignment(batch, i, recordId);
        }
        return new ArraySegment<BucketAssignment>(_items, 0, batch.Count);
    }
}
