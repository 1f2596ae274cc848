using Microsoft.Extensions.ObjectPool;

namespace Synchro.Pipeline.Decoding;

/// <summary>Spare <see cref="ChangeBatch"/>es: rented by their filler, returned by <see cref="ChangeBatch.Release"/> on the writer.</summary>
/// <remarks>
/// A pooled batch keeps its arrays, so a steady stream of batches allocates nothing. Thread-safe (the decoder rents and
/// the writer returns on different threads); a batch returned to a full pool is disposed, its arrays going back to the
/// array pool.
/// </remarks>
internal sealed class ChangeBatchPool
{
    /// <summary>
    /// Spare batches kept: the decoder fills one while the channel holds a couple and the writer one, so more at rest is
    /// memory held for nothing (each may hold up to a batch's byte limit).
    /// </summary>
    public const int DefaultCapacity = 4;

    private readonly ObjectPool<ChangeBatch> _pool;

    public ChangeBatchPool(int capacity = DefaultCapacity)
        => _pool = new DefaultObjectPoolProvider { MaximumRetained = capacity }.Create(new Policy());

    public ChangeBatch Rent()
    {
        var batch = _pool.Get();
        batch.Reuse(this);
        return batch;
    }

    internal void Return(ChangeBatch batch) => _pool.Return(batch);

    private sealed class Policy : PooledObjectPolicy<ChangeBatch>
    {
        public override ChangeBatch Create() => new();

        public override bool Return(ChangeBatch batch)
        {
            batch.Reset();
            return true;
        }
    }
}
