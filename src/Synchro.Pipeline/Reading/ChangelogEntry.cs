namespace Synchro.Pipeline.Reading;

/// <summary>One changelog row of a <see cref="ChangelogPage"/>: what happened to a record in a bucket.</summary>
/// <remarks>A view over the page's buffers: valid until the page is disposed.</remarks>
public readonly struct ChangelogEntry
{
    private readonly ChangelogPage _page;
    private readonly int _row;

    internal ChangelogEntry(ChangelogPage page, int row, long seq, string bucketId, string tableName, ChangeOperation operation)
    {
        _page = page;
        _row = row;
        Seq = seq;
        BucketId = bucketId;
        TableName = tableName;
        Operation = operation;
    }

    /// <summary>The row's <c>seq</c>: increasing in commit order, with gaps.</summary>
    public long Seq { get; }

    /// <summary>The bucket, as the very string instance the caller passed to <see cref="ChangelogReader.ReadAsync"/>.</summary>
    public string BucketId { get; }

    /// <summary>The record's table, as the pipeline's registry names it.</summary>
    public string TableName { get; }

    /// <summary>
    /// What the client does: <see cref="ChangeOperation.Insert"/> and <see cref="ChangeOperation.Update"/> both mean
    /// "fetch the record's current row and put it in the bucket"; <see cref="ChangeOperation.Delete"/> means "remove it
    /// from the bucket" (deleted, soft-deleted, or moved out).
    /// </summary>
    public ChangeOperation Operation { get; }

    /// <summary>The record id, over the page's buffer: no allocation. Valid until the page is disposed.</summary>
    /// <exception cref="ObjectDisposedException">The page was disposed.</exception>
    public ReadOnlySpan<char> RecordIdSpan => _page.RecordIdOf(_row);

    /// <summary>The record id as a new string (allocates; prefer <see cref="RecordIdSpan"/> on a hot path).</summary>
    /// <exception cref="ObjectDisposedException">The page was disposed.</exception>
    public string RecordId => new(RecordIdSpan);

    /// <inheritdoc/>
    public override string ToString() => $"{Seq} {BucketId} {TableName} {RecordId} {Operation}";
}
