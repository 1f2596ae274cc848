using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;

namespace Synchro.Pipeline.Protocol;

/// <summary>
/// Bounds-checked big-endian reads over one pgoutput message. Every failure is a
/// <see cref="PgOutputProtocolException"/> naming the message kind, the offset and the LSN.
/// </summary>
internal ref struct PgOutputReader
{
    private readonly ReadOnlySpan<byte> _message;
    private readonly Lsn _lsn;
    private int _offset;

    public PgOutputReader(ReadOnlySpan<byte> message, Lsn lsn)
    {
        _message = message;
        _lsn = lsn;
        _offset = 0;
    }

    public readonly int Offset => _offset;

    public readonly int Remaining => _message.Length - _offset;

    public readonly byte Kind => _message.IsEmpty ? (byte)0 : _message[0];

    public readonly Lsn Lsn => _lsn;

    public readonly ReadOnlySpan<byte> RemainingSpan => _message[_offset..];

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public byte ReadByte()
    {
        if ((uint)_offset >= (uint)_message.Length)
            ThrowTruncated(1);
        return _message[_offset++];
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public short ReadInt16() => BinaryPrimitives.ReadInt16BigEndian(Take(sizeof(short)));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int ReadInt32() => BinaryPrimitives.ReadInt32BigEndian(Take(sizeof(int)));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public uint ReadUInt32() => BinaryPrimitives.ReadUInt32BigEndian(Take(sizeof(uint)));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public long ReadInt64() => BinaryPrimitives.ReadInt64BigEndian(Take(sizeof(long)));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Lsn ReadLsn() => new(BinaryPrimitives.ReadUInt64BigEndian(Take(sizeof(ulong))));

    /// <summary>A NUL-terminated string, without its terminator.</summary>
    public ReadOnlySpan<byte> ReadCString()
    {
        var rest = _message[_offset..];
        var end = rest.IndexOf((byte)0);
        if (end < 0)
            Throw($"string starting here has no NUL terminator before the end of the message ({rest.Length} bytes left)");
        _offset += end + 1;
        return rest[..end];
    }

    /// <summary>A length-prefixed byte string (Int32 length, then the bytes).</summary>
    public ReadOnlySpan<byte> ReadSizedBytes(string what)
    {
        var start = _offset;
        var length = ReadInt32();
        if ((uint)length > (uint)Remaining)
            ThrowAt(start, $"{what} length {length} is {(length < 0 ? "negative" : $"larger than the {Remaining} bytes left")}");
        return Take(length);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ReadOnlySpan<byte> Take(int count)
    {
        if ((uint)count > (uint)(_message.Length - _offset))
            ThrowTruncated(count);
        var span = _message.Slice(_offset, count);
        _offset += count;
        return span;
    }

    /// <summary>Requires the message to end here: a declared length that leaves bytes over is a desynchronised stream.</summary>
    public readonly void ExpectEnd()
    {
        if (_offset != _message.Length)
            Throw($"{_message.Length - _offset} unexpected trailing bytes after the end of the message");
    }

    [DoesNotReturn]
    public readonly void Throw(string reason) => throw new PgOutputProtocolException(reason, Kind, _offset, _lsn);

    [DoesNotReturn]
    public readonly void ThrowAt(int offset, string reason) => throw new PgOutputProtocolException(reason, Kind, offset, _lsn);

    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    private readonly void ThrowTruncated(int needed)
        => Throw($"message is truncated: {needed} more byte(s) needed, {_message.Length - _offset} left");
}
