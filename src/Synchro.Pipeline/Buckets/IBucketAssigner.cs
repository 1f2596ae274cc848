namespace Synchro.Pipeline.Buckets;

/// <summary>
/// Decides which buckets each change of a batch belongs to. Called once per batch with every change
/// that needs a decision, so an assigner that asks the database makes one set-based query per batch.
/// </summary>
/// <remarks>
/// For each change, an assigner either adds bucket ids (<see cref="BucketAssignment.Buckets"/>), marks it
/// <see cref="BucketAssignment.KeepExistingBuckets"/>, or records a <see cref="BucketAssignment.Fail"/>; a
/// change it does not handle is left untouched for the next assigner. Called from the writer stage only,
/// one batch at a time.
/// </remarks>
public interface IBucketAssigner
{
    /// <summary>Assigns buckets to the changes of <paramref name="batch"/> this assigner is responsible for.</summary>
    Task AssignAsync(BucketAssignmentBatch batch, CancellationToken cancellationToken);
}
