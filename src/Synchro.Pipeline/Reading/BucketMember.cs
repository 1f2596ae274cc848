namespace Synchro.Pipeline.Reading;

/// <summary>A record that is a member of a bucket: a row of <c>sync_bucket_edges</c>.</summary>
public readonly struct BucketMember
{
    /// <summary>Creates a member.</summary>
    /// <param name="bucketId">The bucket.</param>
    /// <param name="tableName">The record's table.</param>
    /// <param name="recordId">The record's id.</param>
    public BucketMember(string bucketId, string tableName, string recordId)
    {
        BucketId = bucketId;
        TableName = tableName;
        RecordId = recordId;
    }

    /// <summary>The bucket, as the very string instance the caller passed to <see cref="ChangelogReader.ReadSnapshotAsync"/>.</summary>
    public string BucketId { get; }

    /// <summary>The record's table, as the pipeline's registry names it.</summary>
    public string TableName { get; }

    /// <summary>The record's id.</summary>
    public string RecordId { get; }

    /// <inheritdoc/>
    public override string ToString() => $"{BucketId} {TableName} {RecordId}";
}
