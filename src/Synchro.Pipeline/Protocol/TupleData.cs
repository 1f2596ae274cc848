using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;

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
/// A row's column values (TupleData), already validated by the parser: enumerating it cannot fail.
/// </summary>
/// <remarks>A view over the message bytes, valid until the parser reads the next message.</remarks>
internal readonly ref struct TupleData
{
    // Column kind byte plus, for 't' and 'b', the Int32 length.
    private const int ValueHeaderLength = 1 + sizeof(int);

    private readonly ReadOnlySpan<byte> _columns;

    /// <param name="columns">The bytes after the column count, exactly covering <paramref name="count"/> validated values.</param>
    /// <param name="count">The number of columns.</param>
    internal TupleData(ReadOnlySpan<byte> columns, int count)
    {
        _columns = columns;
        Count = count;
    }

    public int Count { get; }

    /// <summary>The encoded size of the values (after the column count).</summary>
    public int EncodedLength => _columns.Length;

    public Enumerator GetEnumerator() => new(_columns);

    /// <summary>The value of column <paramref name="index"/> (0-based, tuple order). Walks the columns before it.</summary>
    public TupleValue this[int index]
    {
        get
        {
            ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)index, (uint)Count, nameof(index));
            var enumerator = GetEnumerator();
            for (var i = 0; i <= index; i++)
                enumerator.MoveNext();
            return enumerator.Current;
        }
    }

    /// <summary>
    /// Validates <paramref name="count"/> column values at the reader's position and returns them;
    /// the reader is left after the last value.
    /// </summary>
    internal static TupleData Read(ref PgOutputReader reader, int count)
    {
        var begin = reader.Offset;
        for (var column = 0; column < count; column++)
        {
            var kindOffset = reader.Offset;
            var kind = reader.ReadByte();
            switch (kind)
            {
                case (byte)TupleValueKind.Null:
                case (byte)TupleValueKind.UnchangedToast:
                    break;
                case (byte)TupleValueKind.Text:
                case (byte)TupleValueKind.Binary:
                    reader.ReadSizedBytes("column", column + 1);
                    break;
                default:
                    ThrowUnknownKind(ref reader, kindOffset, column, count, kind);
                    break;
            }
        }
        return new TupleData(reader.SliceFrom(begin), count);
    }

    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowUnknownKind(ref PgOutputReader reader, int offset, int column, int count, byte kind)
        => reader.ThrowAt(offset, $"column {column + 1} of {count} has unknown value kind 0x{kind:X2}; expected 'n', 'u', 't' or 'b'");

    public ref struct Enumerator
    {
        private readonly ReadOnlySpan<byte> _columns;
        private int _offset;
        private TupleValue _current;

        internal Enumerator(ReadOnlySpan<byte> columns)
        {
            _columns = columns;
            _offset = 0;
            _current = default;
        }

        public readonly TupleValue Current => _current;

        // Invariant: _columns was validated by Read, so every header and length is in range.
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public bool MoveNext()
        {
            if (_offset >= _columns.Length)
                return false;
            var kind = (TupleValueKind)_columns[_offset];
            if (kind is TupleValueKind.Null or TupleValueKind.UnchangedToast)
            {
                _offset++;
                _current = new TupleValue(kind, default);
                return true;
            }
            var length = BinaryPrimitives.ReadInt32BigEndian(_columns.Slice(_offset + 1));
            _current = new TupleValue(kind, _columns.Slice(_offset + ValueHeaderLength, length));
            _offset += ValueHeaderLength + length;
            return true;
        }
    }
}
