using System.Buffers;
using System.Buffers.Binary;

namespace Synchro.Pipeline.Protocol;

/// <summary>
/// Cuts <see cref="WalFrame"/>s out of a buffered byte sequence. A frame that lies in one segment
/// is returned in place; one split across segments is copied once into a pooled scratch buffer.
/// </summary>
/// <remarks>
/// Not thread-safe; one per parser. The scratch buffer grows only to the largest frame actually
/// buffered (never to a length that was merely declared) and is returned to the pool on dispose.
/// </remarks>
internal sealed class WalFrameReader(int maxPayloadLength = WalFrameReader.DefaultMaxPayloadLength) : IDisposable
{
    /// <summary>PostgreSQL caps one protocol message at 1 GiB (MaxAllocSize).</summary>
    public const int DefaultMaxPayloadLength = (1 << 30) - 1;

    private byte[] _scratch = [];

    /// <summary>
    /// Reads the next frame. False means "need more bytes": nothing was consumed and
    /// <paramref name="buffer"/> is unchanged. True advances <paramref name="buffer"/> past the frame.
    /// </summary>
    /// <exception cref="PgOutputProtocolException">The header declares an impossible length.</exception>
    public bool TryRead(ref ReadOnlySequence<byte> buffer, out WalFrame frame)
    {
        frame = default;
        if (buffer.Length < WalFrame.HeaderLength)
            return false;

        Span<byte> header = stackalloc byte[WalFrame.HeaderLength];
        var first = buffer.FirstSpan;
        if (first.Length >= WalFrame.HeaderLength)
            first[..WalFrame.HeaderLength].CopyTo(header);
        else
            buffer.Slice(0, WalFrame.HeaderLength).CopyTo(header);

        var length = BinaryPrimitives.ReadInt32BigEndian(header);
        if (length < 0 || length > maxPayloadLength)
            throw new PgOutputProtocolException($"frame header declares a payload of {length} bytes (allowed: 0 to {maxPayloadLength})", messageKind: 0, offset: 0);
        var start = new Lsn(BinaryPrimitives.ReadUInt64BigEndian(header[sizeof(int)..]));
        var end = new Lsn(BinaryPrimitives.ReadUInt64BigEndian(header[(sizeof(int) + sizeof(ulong))..]));

        var total = (long)WalFrame.HeaderLength + length;
        if (buffer.Length < total)
            return false;

        ReadOnlySpan<byte> payload;
        if (first.Length >= total)
        {
            payload = first.Slice(WalFrame.HeaderLength, length);
        }
        else
        {
            EnsureScratch(length);
            buffer.Slice(WalFrame.HeaderLength, length).CopyTo(_scratch);
            payload = _scratch.AsSpan(0, length);
        }
        buffer = buffer.Slice(total);
        frame = new WalFrame(start, end, payload);
        return true;
    }

    private void EnsureScratch(int length)
    {
        if (_scratch.Length >= length)
            return;
        var bigger = ArrayPool<byte>.Shared.Rent(length);
        ReturnScratch();
        _scratch = bigger;
    }

    private void ReturnScratch()
    {
        if (_scratch.Length > 0)
            ArrayPool<byte>.Shared.Return(_scratch);
        _scratch = [];
    }

    public void Dispose() => ReturnScratch();
}
