using System.Buffers;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Text;
using Synchro.Pipeline.Protocol;
using Synchro.Pipeline.Decoding.Items;
using Synchro.Pipeline.Diagnostics;
using Synchro.Pipeline.Registry;

namespace Synchro.Pipeline.Decoding;

/// <summary>
/// The changes of one or more whole source transactions, in commit order — or one chunk of a
/// source transaction larger than the batch limits.
/// </summary>
/// <remarks>
/// Invariant: a batch never ends inside a transaction unless <see cref="EndsTransaction"/> is false,
/// and then the next batch continues that same transaction. The writer keeps its database
/// transaction open across such chunks and commits (with the position) only at the chunk that ends it.
/// <para>
/// Storage: the changes, their referenced columns' <see cref="ColumnValue"/>s and those values' UTF-8 bytes live in
/// three arrays rented from <see cref="ArrayPool{T}.Shared"/> that grow by doubling, so decoding a row allocates
/// nothing; strings are made only by the writer (<see cref="GetString"/>, <see cref="RecordId"/>).
/// </para>
/// <para>
/// Lifetime: rented from a <see cref="ChangeBatchPool"/> by the decoder, filled by it alone, handed to the writer through
/// the channel, and released by the writer exactly once when it is done with it (<see cref="Release"/>; a second release
/// throws). A batch never released (left in the channel at shutdown or failure) is collected by the GC with its
/// arrays. After release nothing may read the batch: it is reused for a later batch.
/// </para>
/// </remarks>
internal sealed class ChangeBatch : DecodedItem, IDisposable
{
    private const int InitialChanges = 256;
    private const int InitialValues = 1024;
    private const int InitialBytes = 32 * 1024;

    private static readonly UTF8Encoding s_utf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private ChangeBatchPool? _pool;
    private DecodedChange[] _changes = [];
    private ColumnValue[] _values = [];
    private byte[] _bytes = [];
    private int _count;
    private int _valueCount;
    private int _byteCount;
    // 0 while in use, 1 once released.
    private int _released;

    internal ChangeBatch()
    {
    }

    /// <summary>The number of changes.</summary>
    public int Count
    {
        get
        {
            AssertInUse();
            return _count;
        }
    }

    /// <summary>The <paramref name="index"/>th change, in commit order.</summary>
    public DecodedChange this[int index]
    {
        get
        {
            AssertInUse();
            return _changes.AsSpan(0, _count)[index];
        }
    }

    /// <summary>Bumped by every release; a reader that captured it can tell its view is stale.</summary>
    public int Generation { get; private set; }

    /// <summary>The end LSN of the last source transaction completed in this batch; the position to persist.</summary>
    public Lsn EndLsn { get; set; }

    /// <summary>False when the batch stops in the middle of a source transaction (a chunk of a large one).</summary>
    public bool EndsTransaction { get; set; } = true;

    /// <summary>Source transactions completed in this batch.</summary>
    public int Transactions { get; set; }

    /// <summary>Source commit time of the first transaction with a part in this batch; default for a heartbeat's empty batch.</summary>
    public DateTime FirstCommitTime { get; set; }

    /// <summary>Source commit times of the transactions completed in this batch, for the latency histogram.</summary>
    public List<DateTime> CommitTimes { get; } = [];

    /// <summary>Stopwatch timestamp of the batch's first change (0 before it): the start of its decode span.</summary>
    public long DecodeStarted { get; set; }

    /// <summary>The commit LSN of the source transaction of the batch's first change.</summary>
    public Lsn FirstLsn { get; set; }

    /// <summary>The context of the batch's decode span, parent of the writer's spans for it; default when it was not traced.</summary>
    public ActivityContext Trace { get; set; }

    /// <summary>The tags the batch's decode and write spans share: the slot, its changes and transactions, its LSNs.</summary>
    public void TagSpan(Activity activity, string slot)
    {
        activity.SetTag(PipelineTracing.SlotTag, slot);
        activity.SetTag(PipelineTracing.ChangesTag, Count);
        activity.SetTag(PipelineTracing.TransactionsTag, Transactions);
        if (FirstLsn.IsValid)
            activity.SetTag(PipelineTracing.FirstLsnTag, FirstLsn.ToString());
        if (EndsTransaction)
            activity.SetTag(PipelineTracing.EndLsnTag, EndLsn.ToString());
        else
            activity.SetTag(PipelineTracing.EndsTransactionTag, false);
    }

    /// <summary>Approximate pgoutput bytes of the changes, for the byte limit.</summary>
    public long Bytes { get; set; }

    /// <summary>A mark to roll the values back to (<see cref="TruncateValues"/>): values read for a row that adds no change.</summary>
    public (int Values, int Bytes) ValueMark => (_valueCount, _byteCount);

    /// <summary>The value of referenced column <paramref name="column"/> of <paramref name="change"/>.</summary>
    public ColumnValue Value(in DecodedChange change, int column) => Value(change.FirstValue + column);

    /// <summary>The <paramref name="index"/>th value of the batch.</summary>
    public ColumnValue Value(int index)
    {
        AssertInUse();
        return _values.AsSpan(0, _valueCount)[index];
    }

    /// <summary>The UTF-8 bytes of <paramref name="value"/> (empty for NULL and unchanged TOAST); valid until release.</summary>
    public ReadOnlySpan<byte> Text(ColumnValue value)
    {
        AssertInUse();
        return _bytes.AsSpan(value.Offset, value.Length);
    }

    /// <summary>The text of referenced column <paramref name="column"/> of <paramref name="change"/>; null for NULL and unchanged TOAST.</summary>
    public string? GetString(in DecodedChange change, int column)
    {
        var value = Value(change, column);
        return value.Kind == TupleValueKind.Text ? s_utf8.GetString(Text(value)) : null;
    }

    /// <summary>
    /// The record id of change <paramref name="index"/> (a new string): the id column's text, or for an id of several columns
    /// the JSON array of theirs (<see cref="CompositeRecordId"/>).
    /// </summary>
    public string RecordId(int index)
    {
        var change = this[index];
        var columns = change.Table.IdColumns.Count;
        return columns == 1 ? GetString(change, 0)! : CompositeId(change, columns);
    }

    private string CompositeId(in DecodedChange change, int columns)
    {
        // Brackets and commas, then each value as a JSON string or null.
        var length = 1 + columns;
        for (var c = 0; c < columns; c++)
        {
            var value = Value(change, c);
            Debug.Assert(value.Kind is TupleValueKind.Text or TupleValueKind.Null, "the decoder adds no change with an id column it lacks");
            length += value.Kind == TupleValueKind.Text ? CompositeRecordId.StringLength(Text(value)) : CompositeRecordId.NullBytes.Length;
        }
        byte[]? rented = null;
        var buffer = length <= 512 ? stackalloc byte[length] : (rented = ArrayPool<byte>.Shared.Rent(length)).AsSpan(0, length);
        try
        {
            var written = 0;
            buffer[written++] = (byte)'[';
            for (var c = 0; c < columns; c++)
            {
                if (c > 0)
                    buffer[written++] = (byte)',';
                var value = Value(change, c);
                if (value.Kind == TupleValueKind.Text)
                {
                    written += CompositeRecordId.WriteString(Text(value), buffer[written..]);
                }
                else
                {
                    CompositeRecordId.NullBytes.CopyTo(buffer[written..]);
                    written += CompositeRecordId.NullBytes.Length;
                }
            }
            buffer[written++] = (byte)']';
            Debug.Assert(written == length);
            return s_utf8.GetString(buffer);
        }
        finally
        {
            if (rented is not null)
                ArrayPool<byte>.Shared.Return(rented);
        }
    }

    /// <summary>Appends a column's text (the decoder validated it as UTF-8).</summary>
    public void AddText(ReadOnlySpan<byte> text)
    {
        if (_bytes.Length - _byteCount < text.Length)
            Grow(ref _bytes, _byteCount, _byteCount + text.Length, InitialBytes);
        text.CopyTo(_bytes.AsSpan(_byteCount));
        AddValue(new ColumnValue(_byteCount, text.Length, TupleValueKind.Text));
        _byteCount += text.Length;
    }

    /// <summary>Replaces value <paramref name="index"/> with <paramref name="text"/> (an unchanged TOAST id taken from the old row).</summary>
    public void SetText(int index, ReadOnlySpan<byte> text)
    {
        Debug.Assert(index < _valueCount);
        if (_bytes.Length - _byteCount < text.Length)
            Grow(ref _bytes, _byteCount, _byteCount + text.Length, InitialBytes);
        text.CopyTo(_bytes.AsSpan(_byteCount));
        _values[index] = new ColumnValue(_byteCount, text.Length, TupleValueKind.Text);
        _byteCount += text.Length;
    }

    /// <summary>
    /// Appends the text form of a binary (<c>'b'</c>) value converted straight into the arena; false, adding nothing,
    /// when the bytes are not a value of <paramref name="format"/>.
    /// </summary>
    public bool AddBinary(BinaryColumnFormat format, ReadOnlySpan<byte> data)
    {
        var room = BinaryValueText.MaxTextLength(format, data.Length);
        if (_bytes.Length - _byteCount < room)
            Grow(ref _bytes, _byteCount, _byteCount + room, InitialBytes);
        var length = BinaryValueText.Format(format, data, _bytes.AsSpan(_byteCount, room));
        if (length < 0)
            return false;
        AddValue(new ColumnValue(_byteCount, length, TupleValueKind.Text));
        _byteCount += length;
        return true;
    }

    /// <summary>
    /// Replaces value <paramref name="index"/> with the text form of a binary value (an unchanged TOAST id taken from the
    /// old row in binary tuple mode); false, changing nothing, when the bytes are not a value of <paramref name="format"/>.
    /// </summary>
    public bool SetBinary(int index, BinaryColumnFormat format, ReadOnlySpan<byte> data)
    {
        Debug.Assert(index < _valueCount);
        var room = BinaryValueText.MaxTextLength(format, data.Length);
        if (_bytes.Length - _byteCount < room)
            Grow(ref _bytes, _byteCount, _byteCount + room, InitialBytes);
        var length = BinaryValueText.Format(format, data, _bytes.AsSpan(_byteCount, room));
        if (length < 0)
            return false;
        _values[index] = new ColumnValue(_byteCount, length, TupleValueKind.Text);
        _byteCount += length;
        return true;
    }

    /// <summary>Appends a NULL or an unchanged TOAST value.</summary>
    public void AddEmpty(TupleValueKind kind)
    {
        Debug.Assert(kind is TupleValueKind.Null or TupleValueKind.UnchangedToast);
        AddValue(new ColumnValue(_byteCount, 0, kind));
    }

    /// <summary>Drops the values added since <paramref name="mark"/> (no change refers to them).</summary>
    public void TruncateValues((int Values, int Bytes) mark)
    {
        Debug.Assert(mark.Values <= _valueCount && mark.Bytes <= _byteCount);
        Debug.Assert(_count == 0 || _changes[_count - 1].FirstValue < mark.Values, "a change refers to the values being dropped");
        (_valueCount, _byteCount) = mark;
    }

    /// <summary>Drops the changes from <paramref name="changes"/> on and the values from <paramref name="mark"/> on (a transaction given up).</summary>
    public void RollBack(int changes, (int Values, int Bytes) mark)
    {
        Debug.Assert(changes <= _count && mark.Values <= _valueCount && mark.Bytes <= _byteCount);
        _changes.AsSpan(changes, _count - changes).Clear();
        _count = changes;
        (_valueCount, _byteCount) = mark;
    }

    /// <summary>Appends a change whose values were added last.</summary>
    public void Add(in DecodedChange change)
    {
        Debug.Assert(change.FirstValue + change.Table.ReferencedColumns.Count <= _valueCount);
        if (_count == _changes.Length)
            Grow(ref _changes, _count, _count + 1, InitialChanges);
        _changes[_count++] = change;
    }

    /// <summary>The writer is done with the batch: it goes back to its pool. Exactly once.</summary>
    public void Release()
    {
        if (Interlocked.Exchange(ref _released, 1) != 0)
            throw new InvalidOperationException("A change batch was released twice.");
        var pool = _pool;
        _pool = null;
        if (pool is not null)
            pool.Return(this);
        else
            Dispose();
    }

    /// <summary>Readies a batch taken from <paramref name="pool"/> for filling.</summary>
    internal void Reuse(ChangeBatchPool? pool)
    {
        Debug.Assert(_count == 0 && _valueCount == 0 && _byteCount == 0);
        _pool = pool;
        EndLsn = default;
        EndsTransaction = true;
        Transactions = 0;
        FirstCommitTime = default;
        CommitTimes.Clear();
        DecodeStarted = 0;
        FirstLsn = default;
        Trace = default;
        Bytes = 0;
        Volatile.Write(ref _released, 0);
    }

    /// <summary>Empties the batch for the pool (it keeps its arrays) and makes any view of it stale.</summary>
    internal void Reset()
    {
        Generation++;
        // Drop the registration references so a pooled batch holds only bytes.
        _changes.AsSpan(0, _count).Clear();
        _count = _valueCount = _byteCount = 0;
    }

    /// <summary>Empties a batch its owner keeps (a staging or read-back batch), keeping its arrays.</summary>
    internal void Clear()
    {
        AssertInUse();
        Reset();
        Reuse(_pool);
    }

    /// <summary>Gives the arrays back to the array pool (a batch the pool does not keep).</summary>
    public void Dispose()
    {
        Reset();
        ReturnArray(ref _changes);
        ReturnArray(ref _values);
        ReturnArray(ref _bytes);
    }

    private void AddValue(ColumnValue value)
    {
        if (_valueCount == _values.Length)
            Grow(ref _values, _valueCount, _valueCount + 1, InitialValues);
        _values[_valueCount++] = value;
    }

    private static void Grow<T>(ref T[] array, int used, int needed, int initial)
    {
        var next = ArrayPool<T>.Shared.Rent(Math.Max(needed, Math.Max(initial, array.Length * 2)));
        array.AsSpan(0, used).CopyTo(next);
        ReturnArray(ref array);
        array = next;
    }

    private static void ReturnArray<T>(ref T[] array)
    {
        if (array.Length > 0)
            ArrayPool<T>.Shared.Return(array, clearArray: RuntimeHelpers.IsReferenceOrContainsReferences<T>());
        array = [];
    }

    [Conditional("DEBUG")]
    private void AssertInUse() => Debug.Assert(Volatile.Read(ref _released) == 0, "a change batch was read after its release");
}
