using System.Collections.ObjectModel;
using System.Globalization;

namespace Synchro.Pipeline.Reading;

/// <summary>
/// Where a client is in the changelog: every row of every bucket it reads with <c>seq</c> at or below
/// <see cref="Position"/> has been read, except that a bucket listed in <see cref="BucketPositions"/> has been read up to
/// its own, higher position (it was loaded from a snapshot taken later).
/// </summary>
/// <remarks>
/// Immutable and equatable; cursors are compared by value. The text form (<see cref="ToString"/>, <see cref="Parse"/>) is
/// for HTTP: the decimal position, followed by <c>.</c> and a base64url block when there are bucket positions.
/// Normalised: a bucket position at or below <see cref="Position"/> says nothing more and is dropped.
/// </remarks>
public sealed partial class ChangelogCursor : IEquatable<ChangelogCursor>
{
    private static readonly IReadOnlyDictionary<string, long> s_none = ReadOnlyDictionary<string, long>.Empty;

    private readonly Dictionary<string, long>? _buckets;

    private ChangelogCursor(long position, Dictionary<string, long>? buckets)
    {
        Position = position;
        _buckets = buckets is { Count: > 0 } ? buckets : null;
        BucketPositions = _buckets is null ? s_none : new ReadOnlyDictionary<string, long>(_buckets);
    }

    /// <summary>Position 0 with no bucket positions: a client with empty state that loaded a snapshot at position 0.</summary>
    /// <remarks>A new client starts from <see cref="ChangelogReader.ReadSnapshotAsync"/>'s cursor instead: records that existed
    /// before the pipeline's initial snapshot are in <c>sync_bucket_edges</c> only, never in the changelog.</remarks>
    public static ChangelogCursor Start { get; } = new(0, null);

    /// <summary>Every row at or below this <c>seq</c> of the buckets read has been read (non-negative).</summary>
    public long Position { get; }

    /// <summary>Buckets read further than <see cref="Position"/>, each with its own position (always above <see cref="Position"/>).</summary>
    public IReadOnlyDictionary<string, long> BucketPositions { get; }

    /// <summary>A cursor at <paramref name="position"/> with no bucket positions.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="position"/> is negative.</exception>
    public static ChangelogCursor FromPosition(long position)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(position);
        return position == 0 ? Start : new ChangelogCursor(position, null);
    }

    /// <summary>The position up to which <paramref name="bucket"/> has been read: its own position, else <see cref="Position"/>.</summary>
    public long PositionOf(string bucket)
    {
        ArgumentNullException.ThrowIfNull(bucket);
        return _buckets is not null && _buckets.TryGetValue(bucket, out var own) ? own : Position;
    }

    /// <summary>
    /// This cursor with <paramref name="buckets"/> read up to <paramref name="position"/>: merges a finished snapshot of those
    /// buckets (<see cref="BucketSnapshotPage.Cursor"/>) into the client's cursor, replacing what the cursor said of them.
    /// </summary>
    /// <param name="buckets">The buckets the snapshot loaded.</param>
    /// <param name="position">The snapshot's position (<see cref="BucketSnapshotPage.Cursor"/>'s <see cref="Position"/>).</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="position"/> is below <see cref="Position"/>: this cursor
    /// already read past the snapshot, so merging it would skip the buckets' changes in between. Take the snapshot again and
    /// merge it before reading further with this cursor.</exception>
    public ChangelogCursor WithBucketPositions(IEnumerable<string> buckets, long position)
    {
        ArgumentNullException.ThrowIfNull(buckets);
        ArgumentOutOfRangeException.ThrowIfNegative(position);
        if (position < Position)
        {
            throw new ArgumentOutOfRangeException(nameof(position), position, string.Create(CultureInfo.InvariantCulture,
                $"The snapshot's position {position} is below the cursor's position {Position}: the cursor has already read past the snapshot, so merging it would skip the buckets' changes in between. Take the snapshot again and merge it before reading further with this cursor."));
        }
        var merged = _buckets is null ? new Dictionary<string, long>(StringComparer.Ordinal) : new Dictionary<string, long>(_buckets, StringComparer.Ordinal);
        foreach (var bucket in buckets)
        {
            if (string.IsNullOrEmpty(bucket))
                throw new ArgumentException("A bucket id is null or empty; pass the ids of the buckets the snapshot loaded.", nameof(buckets));
            if (position > Position)
                merged[bucket] = position;
            else
                merged.Remove(bucket);
        }
        return new ChangelogCursor(Position, merged);
    }

    /// <summary>This cursor moved to <paramref name="position"/> (never backwards), dropping the bucket positions it passed.</summary>
    internal ChangelogCursor Advance(long position)
    {
        if (position <= Position)
            return this;
        if (_buckets is null)
            return new ChangelogCursor(position, null);
        Dictionary<string, long>? kept = null;
        foreach (var (bucket, own) in _buckets)
        {
            if (own > position)
                (kept ??= new Dictionary<string, long>(StringComparer.Ordinal))[bucket] = own;
        }
        return new ChangelogCursor(position, kept);
    }

    /// <summary>The highest position the cursor holds, its own or a bucket's.</summary>
    internal long MaxPosition
    {
        get
        {
            var max = Position;
            if (_buckets is not null)
            {
                foreach (var own in _buckets.Values)
                    max = Math.Max(max, own);
            }
            return max;
        }
    }

    /// <inheritdoc/>
    public bool Equals(ChangelogCursor? other)
    {
        if (ReferenceEquals(this, other))
            return true;
        if (other is null || other.Position != Position || other.BucketPositions.Count != BucketPositions.Count)
            return false;
        if (_buckets is null)
            return true;
        foreach (var (bucket, own) in _buckets)
        {
            if (!other._buckets!.TryGetValue(bucket, out var theirs) || theirs != own)
                return false;
        }
        return true;
    }

    /// <inheritdoc/>
    public override bool Equals(object? obj) => Equals(obj as ChangelogCursor);

    /// <inheritdoc/>
    public override int GetHashCode()
    {
        var hash = 0;
        if (_buckets is not null)
        {
            // Order-independent: the dictionary's order is not part of the value.
            foreach (var (bucket, own) in _buckets)
                hash ^= HashCode.Combine(StringComparer.Ordinal.GetHashCode(bucket), own);
        }
        return HashCode.Combine(Position, BucketPositions.Count, hash);
    }

    /// <summary>Whether two cursors are equal.</summary>
    public static bool operator ==(ChangelogCursor? left, ChangelogCursor? right) => left is null ? right is null : left.Equals(right);

    /// <summary>Whether two cursors differ.</summary>
    public static bool operator !=(ChangelogCursor? left, ChangelogCursor? right) => !(left == right);
}
