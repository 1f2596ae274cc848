using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Synchro.Pipeline.Protocol;

/// <summary>How one column of a tuple is sent.</summary>
internal enum TupleValueKind : byte
{
    /// <summary>SQL NULL (<c>n</c>).</summary>
    Null = (byte)'n',

    /// <summary>A TOASTed value that did not change and was not sent (<c>u</c>).</summary>
    UnchangedToast = (byte)'u',

    /// <summary>The value in the type's text output format (<c>t</c>).</summary>
    Text = (byte)'t',

    /// <summary>The value in the type's binary send format (<c>b</c>).</summary>
    Binary = (byte)'b',
}

/// <summary>One column value of a tuple: a view over the message bytes.</summary>
internal readonly ref struct TupleValue
{
    public TupleValue(TupleValueKind kind, ReadOnlySpan<byte> data)
    {
        Kind = kind;
        Data = data;
    }

    public TupleValueKind Kind { get; }

    /// <summary>The value's bytes; empty for <see cref="TupleValueKind.Null"/> and <see cref="TupleValueKind.UnchangedToast"/>.</summary>
    public ReadOnlySpan<byte> Data { get; }

    public bool IsNull => Kind == TupleValueKind.Null;

    public bool IsUnchangedToast => Kind == TupleValueKind.UnchangedToast;
}

/// <summary>
/// A row's column values (TupleData), already validated by the parser: reading it cannot fail, and
/// any column is reached in constant time through the column offsets the parser recorded.
/// </summary>
/// <remarks>A view over the message bytes and the parser's offset table, valid until the parser reads the next message.</remarks>
internal readonly ref struct TupleData
{
    // Column kind byte plus, for 't' and 'b', the Int32 length.
    private const int ValueHeaderLength = 1 + sizeof(int);

    private readonly ReadOnlySpan<byte> _columns;

    // Invariant: Count + 1 ascending offsets into _columns; column i spans [_starts[i], _starts[i + 1]),
    // the last entry is _columns.Length, and each column's header and length were validated.
    private readonly ReadOnlySpan<int> _starts;

    private TupleData(ReadOnlySpan<byte> columns, ReadOnlySpan<int> starts)
    {
        _columns = columns;
        _starts = starts;
    }

    public int Count => _starts.IsEmpty ? 0 : _starts.Length - 1;

    public Enumerator GetEnumerator() => new(this);

    /// <summary>The value of column <paramref name="index"/> (0-based, tuple order).</summary>
    public TupleValue this[int index]
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get
        {
            if ((uint)index >= (uint)Count)
                ThrowIndex(index);
            return ValueAt(index);
        }
    }

    // Invariant: index < Count, so both offsets exist and bound a validated column.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private TupleValue ValueAt(int index)
    {
        ref var starts = ref MemoryMarshal.GetReference(_starts);
        var start = Unsafe.Add(ref starts, index);
        var end = Unsafe.Add(ref starts, index + 1);
        ref var header = ref Unsafe.Add(ref MemoryMarshal.GetReference(_columns), start);
        var kind = (TupleValueKind)header;
        return kind is TupleValueKind.Text or TupleValueKind.Binary
            ? new TupleValue(kind, MemoryMarshal.CreateReadOnlySpan(ref Unsafe.Add(ref header, ValueHeaderLength), end - start - ValueHeaderLength))
            : new TupleValue(kind, default);
    }

    /// <summary>
    /// Validates <paramref name="count"/> column values at the reader's position, recording where each
    /// starts in <paramref name="starts"/> (at least <paramref name="count"/> + 1 long), and returns them;
    /// the reader is left after the last value.
    /// </summary>
    internal static TupleData Read(ref PgOutputReader reader, int count, Span<int> starts)
    {
        var begin = reader.Offset;
        var rest = reader.RemainingSpan;
        ref var first = ref MemoryMarshal.GetReference(rest);
        starts = starts[..(count + 1)];
        ref var start = ref MemoryMarshal.GetReference(starts);
        var offset = 0;
        for (var column = 0; column < count; column++)
        {
            // Each read below is preceded by the check that keeps it inside rest.
            if ((uint)offset >= (uint)rest.Length)
                ThrowMissing(ref reader, begin + offset, column, count);
            Unsafe.Add(ref start, column) = offset;
            var kind = Unsafe.Add(ref first, offset);
            if (kind is (byte)TupleValueKind.Text or (byte)TupleValueKind.Binary)
            {
                var left = rest.Length - offset - ValueHeaderLength;
                if (left < 0)
                    ThrowMissing(ref reader, begin + offset + 1, column, count);
                var length = BinaryPrimitives.ReverseEndianness(Unsafe.ReadUnaligned<int>(ref Unsafe.Add(ref first, offset + 1)));
                if ((uint)length > (uint)left)
                    ThrowBadLength(ref reader, begin + offset + 1, column, length, left);
                offset += ValueHeaderLength + length;
            }
            else if (kind is (byte)TupleValueKind.Null or (byte)TupleValueKind.UnchangedToast)
            {
                offset++;
            }
            else
            {
                ThrowUnknownKind(ref reader, begin + offset, column, count, kind);
            }
        }
        starts[count] = offset;
        return new TupleData(reader.Take(offset), starts);
    }

    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowIndex(int index) => throw new ArgumentOutOfRangeException(nameof(index), index, "No such column in this tuple.");

    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowMissing(ref PgOutputReader reader, int offset, int column, int count)
        => reader.ThrowAt(offset, $"message is truncated inside column {column + 1} of {count}");

    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowBadLength(ref PgOutputReader reader, int offset, int column, int length, int left)
        => reader.ThrowAt(offset, $"column {column + 1} value length {length} is {(length < 0 ? "negative" : $"larger than the {left} bytes left")}");

    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowUnknownKind(ref PgOutputReader reader, int offset, int column, int count, byte kind)
        => reader.ThrowAt(offset, $"column {column + 1} of {count} has unknown value kind 0x{kind:X2}; expected 'n', 'u', 't' or 'b'");

    /// <summary>Walks the values in order, reading each header from the bytes (faster than the offset table for a full walk).</summary>
    public ref struct Enumerator
    {
        private readonly ReadOnlySpan<byte> _columns;
        private int _offset;
        private TupleValue _current;

        internal Enumerator(TupleData tuple)
        {
            _columns = tuple._columns;
            _offset = 0;
            _current = default;
        }

        public readonly TupleValue Current => _current;

        // Invariant: _columns was validated by Read, so every header and length is in range and
        // the reads need no bounds checks.
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public bool MoveNext()
        {
            if (_offset >= _columns.Length)
                return false;
            ref var value = ref Unsafe.Add(ref MemoryMarshal.GetReference(_columns), _offset);
            var kind = (TupleValueKind)value;
            if (kind is TupleValueKind.Null or TupleValueKind.UnchangedToast)
            {
                _offset++;
                _current = new TupleValue(kind, default);
                return true;
            }
            var length = BinaryPrimitives.ReverseEndianness(Unsafe.ReadUnaligned<int>(ref Unsafe.Add(ref value, 1)));
            _current = new TupleValue(kind, MemoryMarshal.CreateReadOnlySpan(ref Unsafe.Add(ref value, ValueHeaderLength), length));
            _offset += ValueHeaderLength + length;
            return true;
        }
    }
}
