using System.Buffers;
using System.Buffers.Binary;
using System.Text;

namespace Synchro.Pipeline.Changelog;

/// <summary>
/// Encodes rows in PostgreSQL's binary COPY format (<c>COPY … FROM STDIN (FORMAT BINARY)</c>) into one pooled
/// buffer, for <c>NpgsqlConnection.BeginRawBinaryCopy</c>: the 19-byte header, per row an int16 field count and per
/// field an int32 length (-1 for NULL) and the value's bytes, big-endian; an int16 -1 trailer.
/// </summary>
/// <remarks>
/// Text is UTF-8 (the text type's binary form is its characters); <c>smallint</c>, <c>integer</c> and <c>bigint</c>
/// are 2, 4 and 8 bytes big-endian. Not thread-safe; <see cref="Written"/> is valid until the next write or <see cref="Clear"/>.
/// Invariant: <see cref="Written"/> is always whole fields (a row is complete after its last field).
/// </remarks>
internal sealed class PgCopyBinaryWriter : IDisposable
{
    /// <summary>Flush threshold for callers that stream: large enough to amortise the write, small enough to stay in cache.</summary>
    public const int FlushBytes = 64 * 1024;

    private const int InitialBytes = 2 * FlushBytes;

    private static readonly UTF8Encoding s_utf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private byte[] _buffer = ArrayPool<byte>.Shared.Rent(InitialBytes);
    private int _length;

    /// <summary>The signature <c>PGCOPY\n\xFF\r\n\0</c>, int32 flags 0 (no OIDs), int32 header extension length 0.</summary>
    private static ReadOnlySpan<byte> Header =>
        [(byte)'P', (byte)'G', (byte)'C', (byte)'O', (byte)'P', (byte)'Y', (byte)'\n', 0xFF, (byte)'\r', (byte)'\n', 0, 0, 0, 0, 0, 0, 0, 0, 0];

    public ReadOnlyMemory<byte> Written => _buffer.AsMemory(0, _length);

    public int Length => _length;

    public void WriteHeader() => Header.CopyTo(Reserve(Header.Length));

    public void StartRow(short fields) => BinaryPrimitives.WriteInt16BigEndian(Reserve(sizeof(short)), fields);

    public void WriteText(string value)
    {
        var max = s_utf8.GetMaxByteCount(value.Length);
        var span = Reserve(sizeof(int) + max);
        var length = s_utf8.GetBytes(value, span[sizeof(int)..]);
        BinaryPrimitives.WriteInt32BigEndian(span, length);
        // Give back what the worst case reserved and the text did not use.
        _length -= max - length;
    }

    public void WriteInt16(short value)
    {
        var span = Reserve(sizeof(int) + sizeof(short));
        BinaryPrimitives.WriteInt32BigEndian(span, sizeof(short));
        BinaryPrimitives.WriteInt16BigEndian(span[sizeof(int)..], value);
    }

    public void WriteInt32(int value)
    {
        var span = Reserve(sizeof(int) + sizeof(int));
        BinaryPrimitives.WriteInt32BigEndian(span, sizeof(int));
        BinaryPrimitives.WriteInt32BigEndian(span[sizeof(int)..], value);
    }

    public void WriteInt64(long value)
    {
        var span = Reserve(sizeof(int) + sizeof(long));
        BinaryPrimitives.WriteInt32BigEndian(span, sizeof(long));
        BinaryPrimitives.WriteInt64BigEndian(span[sizeof(int)..], value);
    }

    public void WriteNull() => BinaryPrimitives.WriteInt32BigEndian(Reserve(sizeof(int)), -1);

    public void WriteTrailer() => BinaryPrimitives.WriteInt16BigEndian(Reserve(sizeof(short)), -1);

    /// <summary>Forgets what was written (after the caller sent it); keeps the buffer.</summary>
    public void Clear() => _length = 0;

    public void Dispose()
    {
        var buffer = _buffer;
        _buffer = [];
        _length = 0;
        if (buffer.Length > 0)
            ArrayPool<byte>.Shared.Return(buffer);
    }

    private Span<byte> Reserve(int bytes)
    {
        if (_buffer.Length - _length < bytes)
        {
            var next = ArrayPool<byte>.Shared.Rent(Math.Max(_buffer.Length * 2, _length + bytes));
            _buffer.AsSpan(0, _length).CopyTo(next);
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = next;
        }
        var span = _buffer.AsSpan(_length, bytes);
        _length += bytes;
        return span;
    }
}
