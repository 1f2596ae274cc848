namespace Synchro.Pipeline.Buckets;

/// <summary>
/// The reference's default resolver: the record's own owner or bucket-by column, else its parent
/// chain, then the application's assigners (if any) for what those leave undecided.
/// </summary>
public sealed class DefaultBucketAssigner(params IBucketAssigner[] additional) : IBucketAssigner
{
    private readonly IBucketAssigner[] _assigners = [new ColumnBucketAssigner(), new ParentChainBucketAssigner(), .. additional];

    /// <inheritdoc/>
    public async Task AssignAsync(BucketAssignmentBatch batch, CancellationToken cancellationToken)
    {
        foreach (var assigner in _assigners)
            await assigner.AssignAsync(batch, cancellationToken).ConfigureAwait(false);
    }
}
