using System.Buffers;
using Npgsql;

namespace Synchro.Pipeline.Compaction;

/// <summary>
/// The records (table name and record id) of one bucket seen so far, newest row first, up to a bound. A row is read into a
/// pooled buffer and looked up as a span: only a record seen for the first time allocates (its key, kept).
/// </summary>
/// <remarks>A key is <c>table_name</c>, NUL, <c>record_id</c>: PostgreSQL text holds no NUL, so two records never share a key.</remarks>
internal sealed class RecordKeySet : IDisposable
{
    private const int InitialBufferChars = 256;

    private readonly HashSet<string> _keys = new(StringComparer.Ordinal);
    private readonly HashSet<string>.AlternateLookup<ReadOnlySpan<char>> _lookup;
    private readonly int _capacity;
    private char[] _buffer = ArrayPool<char>.Shared.Rent(InitialBufferChars);
    private int _length;

    public RecordKeySet(int capacity)
    {
        _capacity = capacity;
        _lookup = _keys.GetAlternateLookup<ReadOnlySpan<char>>();
    }

    /// <summary>Records tracked.</summary>
    public int Count => _keys.Count;

    /// <summary>Whether no further record can be tracked.</summary>
    public bool Full => _keys.Count >= _capacity;

    /// <summary>Forgets every record, for the next bucket.</summary>
    public void Clear() => _keys.Clear();

    /// <summary>Reads the current row's key from columns <paramref name="table"/> and <paramref name="record"/> into the buffer.</summary>
    public void Read(NpgsqlDataReader reader, int table, int record)
    {
        _length = 0;
        ReadText(reader, table);
        Reserve(1);
        _buffer[_length++] = '\0';
        ReadText(reader, record);
    }

    /// <summary>Whether the key last read was seen before.</summary>
    public bool Contains() => _lookup.Contains(_buffer.AsSpan(0, _length));

    /// <summary>Tracks the key last read (the caller checked it is new and the set is not <see cref="Full"/>).</summary>
    public void Add() => _lookup.Add(_buffer.AsSpan(0, _length));

    private void ReadText(NpgsqlDataReader reader, int ordinal)
    {
        // GetChars from offset 0 each time: the row is buffered (not sequential access), so a retry with a larger buffer reads it again.
        while (true)
        {
            var room = _buffer.Length - _length;
            var read = (int)reader.GetChars(ordinal, 0, _buffer, _length, room);
            if (read < room)
            {
                _length += read;
                return;
            }
            Grow(_buffer.Length * 2);
        }
    }

    private void Reserve(int chars)
    {
        if (_buffer.Length - _length < chars)
            Grow(_buffer.Length * 2);
    }

    private void Grow(int size)
    {
        var larger = ArrayPool<char>.Shared.Rent(size);
        _buffer.AsSpan(0, _length).CopyTo(larger);
        ArrayPool<char>.Shared.Return(_buffer);
        _buffer = larger;
    }

    public void Dispose()
    {
        _keys.Clear();
        ArrayPool<char>.Shared.Return(_buffer);
        _buffer = [];
    }
}
