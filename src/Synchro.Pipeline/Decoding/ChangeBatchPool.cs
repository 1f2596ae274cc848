namespace Synchro.Pipeline.Decoding;

/// <summary>The decoder's spare <see cref="ChangeBatch"/>es: rented by the decoder, returned by <see cref="ChangeBatch.Release"/> on the writer.</summary>
/// <remarks>
/// A pooled batch keeps its arrays, so a steady stream of batches allocates nothing. Thread-safe: the decoder rents and
/// the writer returns on different threads (a lock; a few operations per batch, never per row).
/// </remarks>
internal sealed class ChangeBatchPool
{
    /// <summary>
    /// Spare batches kept: the decoder fills one while the channel holds a couple and the writer one, so more at rest is
    /// memory held for nothing (each may hold up to a batch's byte limit).
    /// </summary>
    public const int DefaultCapacity = 4;

    private readonly Stack<ChangeBatch> _spare;
    private readonly int _capacity;

    public ChangeBatchPool(int capacity = DefaultCapacity)
    {
        _capacity = capacity;
        _spare = new Stack<ChangeBatch>(capacity);
    }

    public ChangeBatch Rent()
    {
        ChangeBatch? batch;
        lock (_spare)
            _spare.TryPop(out batch);
        batch ??= new ChangeBatch(this);
        batch.Reuse();
        return batch;
    }

    /// <summary>Takes back a released batch; false when the pool is full (the caller then frees its arrays).</summary>
    internal bool TryReturn(ChangeBatch batch)
    {
        lock (_spare)
        {
            if (_spare.Count >= _capacity)
                return false;
            _spare.Push(batch);
            return true;
        }
    }
}
