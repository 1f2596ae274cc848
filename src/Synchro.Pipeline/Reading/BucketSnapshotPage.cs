namespace Synchro.Pipeline.Reading;

/// <summary>One page of a bucket snapshot (<see cref="ChangelogReader.ReadSnapshotAsync"/>).</summary>
public sealed class BucketSnapshotPage
{
    internal BucketSnapshotPage(IReadOnlyList<BucketMember> members, long position, BucketSnapshotToken? next)
    {
        Members = members;
        Position = position;
        Next = next;
        Cursor = next is null ? ChangelogCursor.FromPosition(position) : null;
    }

    /// <summary>The page's members, ordered by bucket (ordinal order of the ids), table name and record id.</summary>
    public IReadOnlyList<BucketMember> Members { get; }

    /// <summary>The snapshot's position S, fixed by its first page: the members are those of the changelog at S, up to changes after S.</summary>
    public long Position { get; }

    /// <summary>The token to pass for the next page; null on the last page.</summary>
    public BucketSnapshotToken? Next { get; }

    /// <summary>Whether this is the snapshot's last page.</summary>
    public bool IsLast => Next is null;

    /// <summary>
    /// On the last page, the cursor to continue from: position S. A client that resynced some of its buckets merges it with
    /// <see cref="ChangelogCursor.WithBucketPositions"/>; one that loaded all its buckets uses it as it is. Null before the last page.
    /// </summary>
    public ChangelogCursor? Cursor { get; }
}
