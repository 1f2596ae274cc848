namespace Synchro.Pipeline.Reading;

/// <summary>
/// The result of <see cref="ChangelogReader.ReadAsync"/>: rows after the cursor in <c>seq</c> order and the cursor to
/// continue from, or the buckets to resync.
/// </summary>
/// <remarks>
/// Holds pooled buffers: dispose it when done with its entries (an entry's <see cref="ChangelogEntry.RecordIdSpan"/> is
/// valid until then). Not thread-safe; read it from one thread at a time.
/// </remarks>
public sealed class ChangelogPage : IDisposable
{
    private static readonly IReadOnlyList<string> s_noBuckets = [];

    private readonly IReadOnlyList<string> _buckets;
    private ChangelogRows? _rows;

    internal ChangelogPage(IReadOnlyList<string> buckets, ChangelogRows? rows, int count, ChangelogCursor next, bool hasMore)
    {
        _buckets = buckets;
        _rows = rows;
        Count = count;
        Next = next;
        HasMore = hasMore;
        ResyncBuckets = s_noBuckets;
    }

    internal ChangelogPage(IReadOnlyList<string> buckets, ChangelogCursor cursor, IReadOnlyList<string> resync, ResyncReason reason)
    {
        _buckets = buckets;
        Next = cursor;
        Status = ChangelogReadStatus.ResyncRequired;
        ResyncBuckets = resync;
        ResyncReason = reason;
    }

    /// <summary>Whether the page holds rows (<see cref="ChangelogReadStatus.Ok"/>) or asks for a resync.</summary>
    public ChangelogReadStatus Status { get; }

    /// <summary>
    /// When <see cref="Status"/> is <see cref="ChangelogReadStatus.ResyncRequired"/>: the buckets (the caller's string
    /// instances) to load again from <see cref="ChangelogReader.ReadSnapshotAsync"/>; otherwise empty.
    /// </summary>
    public IReadOnlyList<string> ResyncBuckets { get; }

    /// <summary>Why the buckets need a resync, or <see cref="ResyncReason.None"/>.</summary>
    public ResyncReason ResyncReason { get; }

    /// <summary>
    /// The cursor to pass to the next read: past every row of this page, and, once caught up, moved to the changelog's
    /// high-water mark so that an idle client's cursor keeps up. Never behind the cursor that was passed; that very cursor
    /// when a resync is required.
    /// </summary>
    public ChangelogCursor Next { get; }

    /// <summary>Whether more rows may already be waiting after <see cref="Next"/>: read again at once rather than after a pause.</summary>
    public bool HasMore { get; }

    /// <summary>The number of rows.</summary>
    public int Count { get; }

    /// <summary>The row at <paramref name="index"/>, in <c>seq</c> order.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="index"/> is outside 0 to <see cref="Count"/> - 1.</exception>
    /// <exception cref="ObjectDisposedException">The page was disposed.</exception>
    public ChangelogEntry this[int index]
    {
        get
        {
            if ((uint)index >= (uint)Count)
                throw new ArgumentOutOfRangeException(nameof(index), index, $"The page has {Count} rows.");
            var rows = Rows;
            var row = rows.Order[index];
            return new ChangelogEntry(this, row, rows.Seq[row], _buckets[rows.Bucket[row]], rows.Table[row], (ChangeOperation)rows.Operation[row]);
        }
    }

    /// <summary>Enumerates the rows in <c>seq</c> order without allocating.</summary>
    public Enumerator GetEnumerator() => new(this);

    /// <summary>Returns the page's buffers to the pool; its entries must not be used afterwards.</summary>
    public void Dispose()
    {
        var rows = Interlocked.Exchange(ref _rows, null);
        rows?.Return();
    }

    internal ReadOnlySpan<char> RecordIdOf(int row) => Rows.RecordId(row);

    private ChangelogRows Rows => _rows ?? throw new ObjectDisposedException(nameof(ChangelogPage), "The page was disposed; read its entries before disposing it.");

    /// <summary>Enumerates a page's rows in <c>seq</c> order.</summary>
    public struct Enumerator
    {
        private readonly ChangelogPage _page;
        private int _index;

        internal Enumerator(ChangelogPage page)
        {
            _page = page;
            _index = -1;
        }

        /// <summary>The current row.</summary>
        public readonly ChangelogEntry Current => _page[_index];

        /// <summary>Moves to the next row; false after the last.</summary>
        public bool MoveNext() => ++_index < _page.Count;
    }
}
