namespace Synchro.Pipeline.Buckets;

/// <summary>
/// Buckets from the record's own owner or bucket-by column: prefix + value; <c>global</c> when the value
/// is null and the table allows it; none otherwise. Handles only tables that have such a column.
/// </summary>
public sealed class ColumnBucketAssigner : IBucketAssigner
{
    /// <inheritdoc/>
    public Task AssignAsync(BucketAssignmentBatch batch, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(batch);
        foreach (var change in batch.Changes)
        {
            if (change.IsDecided)
                continue;
            if (change.Table.BucketColumn is { } column)
                Assign(change, column, batch.BucketIds);
            else if (change.Table.ParentTable is null && change.Table.GlobalWhenBucketNull)
                change.Buckets.Add(BucketAssignment.GlobalBucket);
        }
        return Task.CompletedTask;
    }

    private static void Assign(BucketAssignment change, string column, BucketIdCache bucketIds)
    {
        if (change.IsUnchanged(column))
        {
            change.KeepExistingBuckets = true;
            return;
        }
        if (change.TryGetText(column, out var value))
        {
            if (value.IsEmpty)
                change.AssignNone();
            else
                change.Buckets.Add(bucketIds.Get(change.Table.BucketPrefix, value));
        }
        else if (change.Table.GlobalWhenBucketNull)
        {
            change.Buckets.Add(BucketAssignment.GlobalBucket);
        }
        else
        {
            change.AssignNone();
        }
    }
}
