using System.Buffers;
using System.Buffers.Binary;
using System.Buffers.Text;
using System.Text;

namespace Synchro.Pipeline.Reading;

/// <summary>
/// The compact binary block of cursor and token texts: unsigned LEB128 integers and length-prefixed UTF-8 strings,
/// written as base64url (no padding) so the text needs no escaping in a URL.
/// </summary>
internal ref struct CompactWriter
{
    private byte[] _buffer;
    private int _length;

    public CompactWriter(int capacity)
    {
        _buffer = ArrayPool<byte>.Shared.Rent(Math.Max(capacity, 16));
        _length = 0;
    }

    public void WriteUInt64(ulong value)
    {
        Ensure(10);
        while (value >= 0x80)
        {
            _buffer[_length++] = (byte)(value | 0x80);
            value >>= 7;
        }
        _buffer[_length++] = (byte)value;
    }

    public void WriteString(string value)
    {
        var bytes = Encoding.UTF8.GetByteCount(value);
        WriteUInt64((ulong)bytes);
        Ensure(bytes);
        _length += Encoding.UTF8.GetBytes(value, _buffer.AsSpan(_length));
    }

    public void WriteUInt64LittleEndian(ulong value)
    {
        Ensure(8);
        BinaryPrimitives.WriteUInt64LittleEndian(_buffer.AsSpan(_length), value);
        _length += 8;
    }

    /// <summary>The base64url text of what was written; returns the buffer to the pool.</summary>
    public string ToBase64Url(string prefix)
    {
        var encoded = Base64Url.GetEncodedLength(_length);
        var bytes = _buffer;
        var length = _length;
        var text = string.Create(prefix.Length + encoded, (prefix, bytes, length), static (chars, state) =>
        {
            state.prefix.AsSpan().CopyTo(chars);
            Base64Url.EncodeToChars(state.bytes.AsSpan(0, state.length), chars[state.prefix.Length..]);
        });
        ArrayPool<byte>.Shared.Return(_buffer);
        _buffer = [];
        return text;
    }

    private void Ensure(int more)
    {
        if (_length + more <= _buffer.Length)
            return;
        var larger = ArrayPool<byte>.Shared.Rent(Math.Max(_buffer.Length * 2, _length + more));
        _buffer.AsSpan(0, _length).CopyTo(larger);
        ArrayPool<byte>.Shared.Return(_buffer);
        _buffer = larger;
    }
}

/// <summary>Reads what <see cref="CompactWriter"/> wrote; every method returns false on malformed input and never throws.</summary>
internal ref struct CompactReader(ReadOnlySpan<byte> bytes)
{
    private readonly ReadOnlySpan<byte> _bytes = bytes;
    private int _offset;

    public readonly bool AtEnd => _offset == _bytes.Length;

    public bool TryReadUInt64(out ulong value)
    {
        value = 0;
        for (var shift = 0; shift < 64; shift += 7)
        {
            if (_offset == _bytes.Length)
                return false;
            var b = _bytes[_offset++];
            value |= (ulong)(b & 0x7F) << shift;
            if (b < 0x80)
                return shift < 63 || b <= 1;
        }
        return false;
    }

    public bool TryReadString(int maxBytes, out string value)
    {
        value = "";
        if (!TryReadUInt64(out var length) || length > (ulong)maxBytes || length > (ulong)(_bytes.Length - _offset))
            return false;
        var utf8 = _bytes.Slice(_offset, (int)length);
        if (!System.Text.Unicode.Utf8.IsValid(utf8))
            return false;
        value = Encoding.UTF8.GetString(utf8);
        _offset += (int)length;
        return true;
    }

    public bool TryReadBytes(int count, out ReadOnlySpan<byte> value)
    {
        value = default;
        if (count > _bytes.Length - _offset)
            return false;
        value = _bytes.Slice(_offset, count);
        _offset += count;
        return true;
    }
}

/// <summary>Decoding of the base64url block.</summary>
internal static class CompactText
{
    /// <summary>The decoded bytes of <paramref name="text"/> in a pooled array (return it), or null when it is not base64url.</summary>
    public static byte[]? TryDecode(ReadOnlySpan<char> text, out int length)
    {
        length = 0;
        if (text.IsEmpty || !Base64Url.IsValid(text, out var decodedLength))
            return null;
        var bytes = ArrayPool<byte>.Shared.Rent(Math.Max(decodedLength, 1));
        if (Base64Url.TryDecodeFromChars(text, bytes, out length))
            return bytes;
        ArrayPool<byte>.Shared.Return(bytes);
        return null;
    }
}
