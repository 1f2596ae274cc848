namespace Synchro.Pipeline.Buckets;

/// <summary>
/// A bucket assigner for application code that answers one change at a time: override
/// <see cref="AssignAsync(BucketAssignment, CancellationToken)"/>, or wrap a delegate with <see cref="Create"/>.
/// </summary>
/// <remarks>
/// <para>
/// Slower than a batched <see cref="IBucketAssigner"/>: the changes of a batch are awaited one after another, so an
/// assigner that queries a database makes one round trip per change where a batched one makes one per batch. Use it for
/// logic that needs no I/O, or for low volumes.
/// </para>
/// <para>
/// <see cref="BucketAssignment.GetValue"/> reads the registration's referenced columns; set
/// <see cref="Registry.TableRegistration.DecodeAllColumns"/> on the tables whose other columns the assigner reads.
/// Changes another rule already decided (a SQL function, an owner column, the parent chain) are not offered. An exception
/// thrown for one change (other than cancellation) becomes that change's rule failure, recorded in <c>sync_rule_failures</c>
/// with its row, and the other changes go on.
/// </para>
/// </remarks>
public abstract class PerChangeBucketAssigner : IBucketAssigner
{
    /// <summary>
    /// The buckets of one change: bucket ids (none for an empty sequence), or null to leave the change to the next assigner.
    /// </summary>
    /// <param name="change">The change; its values can be read only until the returned task completes.</param>
    /// <param name="cancellationToken">Cancelled when the pipeline stops.</param>
    protected abstract ValueTask<IEnumerable<string>?> AssignAsync(BucketAssignment change, CancellationToken cancellationToken);

    /// <summary>An assigner that calls <paramref name="assign"/> for each undecided change.</summary>
    /// <param name="assign">Returns the change's bucket ids (empty for none), or null to leave it undecided.</param>
    public static PerChangeBucketAssigner Create(Func<BucketAssignment, CancellationToken, ValueTask<IEnumerable<string>?>> assign)
    {
        ArgumentNullException.ThrowIfNull(assign);
        return new DelegateAssigner(assign);
    }

    /// <inheritdoc/>
    public async Task AssignAsync(BucketAssignmentBatch batch, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(batch);
        foreach (var change in batch.Changes)
        {
            if (change.IsDecided)
                continue;
            IEnumerable<string>? buckets;
            try
            {
                buckets = await AssignAsync(change, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (!GuardedBucketAssigner.IsRetried(e, cancellationToken))
            {
                change.Fail($"bucket assigner {GetType().Name} threw {e.GetType().Name}: {e.Message}");
                continue;
            }
            if (buckets is null)
                continue;
            foreach (var bucket in buckets)
                change.Buckets.Add(bucket);
            if (change.Buckets.Count == 0)
                change.AssignNone();
        }
    }

    private sealed class DelegateAssigner(Func<BucketAssignment, CancellationToken, ValueTask<IEnumerable<string>?>> assign) : PerChangeBucketAssigner
    {
        protected override ValueTask<IEnumerable<string>?> AssignAsync(BucketAssignment change, CancellationToken cancellationToken) => assign(change, cancellationToken);
    }
}
