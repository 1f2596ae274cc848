using System.Buffers.Binary;

namespace Synchro.Pipeline.Protocol;

/// <summary>
/// One XLogData payload as the reader stage hands it to the parser: a 20-byte header
/// (Int32 payload length, Int64 WAL start, Int64 WAL end; big-endian) followed by the payload.
/// </summary>
/// <remarks>A view: <see cref="Payload"/> is valid until the next frame is read.</remarks>
internal readonly ref struct WalFrame(Lsn walStart, Lsn walEnd, ReadOnlySpan<byte> payload)
{
    public const int HeaderLength = sizeof(int) + sizeof(ulong) + sizeof(ulong);

    /// <summary>The WAL position of the payload's message.</summary>
    public Lsn WalStart { get; } = walStart;

    /// <summary>The server's WAL end when it sent the payload.</summary>
    public Lsn WalEnd { get; } = walEnd;

    /// <summary>One whole pgoutput message.</summary>
    public ReadOnlySpan<byte> Payload { get; } = payload;

    public static void WriteHeader(Span<byte> destination, int payloadLength, Lsn walStart, Lsn walEnd)
    {
        BinaryPrimitives.WriteInt32BigEndian(destination, payloadLength);
        BinaryPrimitives.WriteUInt64BigEndian(destination[sizeof(int)..], walStart.Value);
        BinaryPrimitives.WriteUInt64BigEndian(destination[(sizeof(int) + sizeof(ulong))..], walEnd.Value);
    }

    /// <summary>Appends a whole frame to <paramref name="writer"/>.</summary>
    public static void Write(System.Buffers.IBufferWriter<byte> writer, Lsn walStart, Lsn walEnd, ReadOnlySpan<byte> payload)
    {
        var span = writer.GetSpan(HeaderLength + payload.Length);
        WriteHeader(span, payload.Length, walStart, walEnd);
        payload.CopyTo(span[HeaderLength..]);
        writer.Advance(HeaderLength + payload.Length);
    }
}
