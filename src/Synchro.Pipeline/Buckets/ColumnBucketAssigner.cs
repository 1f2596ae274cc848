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
                Assign(change, column);
            else if (change.Table.ParentTable is null && change.Table.GlobalWhenBucketNull)
                change.Buckets.Add(BucketAssignment.GlobalBucket);
        }
        return Task.CompletedTask;
    }

    private static void Assign(BucketAssignment change, string column)
    {
        if (change.IsUnchanged(column))
        {
            change.KeepExistingBuckets = true;
            return;
        }
        var value = change.GetValue(column);
        if (!string.IsNullOrEmpty(value))
            change.Buckets.Add(change.Table.BucketPrefix + value);
        else if (value is null && change.Table.GlobalWhenBucketNull)
            change.Buckets.Add(BucketAssignment.GlobalBucket);
        else
            change.AssignNone();
    }
}
