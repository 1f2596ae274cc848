using System.Buffers.Binary;
using System.Numerics;
using System.Runtime.InteropServices;

namespace Synchro.Pipeline.Decoding.Spill;

/// <summary>
/// The framing of the spill format: a header naming the format and its version, then each record in a frame that
/// carries its length and a CRC-32C checksum.
/// </summary>
/// <remarks>
/// <para>
/// Layout (little-endian): the header <c>"SYNSPILL" u32 version</c> (12 bytes), then per record <c>u32 payload length,
/// u32 CRC-32C of the length bytes and the payload, payload</c>. The payloads are the records of
/// <see cref="SpillRecordWriter"/>. Version 1 is this layout.
/// </para>
/// <para>
/// Version 0 had neither header nor frames: its records followed one another from byte 0, and its first record is
/// always a table record (<c>'T'</c>). It can only be met in rows of <c>sync_prepared_transactions</c> stored before
/// the upgrade (a local file never outlives its connection), so readers of stored rows still accept it; the magic
/// starts with <c>'S'</c>, never <c>'T'</c>, so the two cannot be taken for each other.
/// </para>
/// </remarks>
internal static class SpillFormat
{
    /// <summary>The version this build writes.</summary>
    public const uint CurrentVersion = 1;

    /// <summary>The header: magic and version.</summary>
    public const int HeaderBytes = 12;

    /// <summary>The frame in front of each record: length and checksum.</summary>
    public const int FrameBytes = 8;

    /// <summary>No record is larger: a row's values are each at most 1 GB in PostgreSQL, and a record holds a row and its old row.</summary>
    public const int MaxRecordBytes = int.MaxValue - 64;

    private static ReadOnlySpan<byte> Magic => "SYNSPILL"u8;

    /// <summary>Writes the header of the current version into <paramref name="destination"/> (<see cref="HeaderBytes"/> long).</summary>
    public static void WriteHeader(Span<byte> destination)
    {
        Magic.CopyTo(destination);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[Magic.Length..], CurrentVersion);
    }

    /// <summary>
    /// The format of a stream that starts with <paramref name="start"/> (at least <see cref="HeaderBytes"/> bytes, or the
    /// whole stream when shorter): its version, 0 for the unversioned records of earlier versions, or null when it is
    /// neither (another program's file, or damaged). <paramref name="problem"/> then says what was found.
    /// </summary>
    public static uint? Detect(ReadOnlySpan<byte> start, out string problem)
    {
        problem = "";
        if (start.Length >= HeaderBytes && start[..Magic.Length].SequenceEqual(Magic))
            return BinaryPrimitives.ReadUInt32LittleEndian(start[Magic.Length..]);
        if (start.Length > 0 && start[0] == SpillRecordWriter.TableRecord)
            return 0;
        problem = start.Length < Magic.Length || !start[..Magic.Length].SequenceEqual(Magic)
            ? $"it does not start with the spill format's header (found {Convert.ToHexString(start[..Math.Min(start.Length, Magic.Length)])})"
            : "its header is cut short";
        return null;
    }

    /// <summary>
    /// Checks a piece of a stream of the current version — its header when <paramref name="withHeader"/>, then whole
    /// frames with matching checksums up to its end — without decoding the records.
    /// </summary>
    /// <param name="piece">The bytes.</param>
    /// <param name="withHeader">Whether the piece starts the stream.</param>
    /// <param name="source">The file, for the message.</param>
    /// <param name="offset">Where the piece starts in the file, for the message.</param>
    /// <exception cref="SpillDamagedException">The piece is not that.</exception>
    public static void Verify(ReadOnlySpan<byte> piece, bool withHeader, string source, long offset)
    {
        var at = 0;
        if (withHeader)
        {
            if (Detect(piece, out var problem) != CurrentVersion)
                throw new SpillDamagedException(source, offset, problem.Length > 0 ? problem : "its header names another format version");
            at = HeaderBytes;
        }
        while (at < piece.Length)
        {
            if (piece.Length - at < FrameBytes)
                throw new SpillDamagedException(source, offset + at, "the piece ends inside a frame");
            var length = BinaryPrimitives.ReadInt32LittleEndian(piece[at..]);
            if (length < 1 || length > piece.Length - at - FrameBytes)
                throw new SpillDamagedException(source, offset + at, $"a frame gives a record length of {length} bytes, more than the piece holds");
            var stored = BinaryPrimitives.ReadUInt32LittleEndian(piece[(at + 4)..]);
            var computed = Checksum(piece.Slice(at, 4), piece.Slice(at + FrameBytes, length));
            if (stored != computed)
                throw new SpillDamagedException(source, offset + at, $"the checksum of a record of {length} bytes does not match (stored {stored:X8}, computed {computed:X8})");
            at += FrameBytes + length;
        }
    }

    /// <summary>The CRC-32C (Castagnoli) of a frame: its length bytes, then the payload.</summary>
    public static uint Checksum(ReadOnlySpan<byte> lengthBytes, ReadOnlySpan<byte> payload)
        => ~Crc32C(Crc32C(uint.MaxValue, lengthBytes), payload);

    /// <summary>Continues CRC-32C <paramref name="crc"/> (not inverted) over <paramref name="data"/>; hardware-accelerated where the CPU has it.</summary>
    internal static uint Crc32C(uint crc, ReadOnlySpan<byte> data)
    {
        var words = MemoryMarshal.Cast<byte, ulong>(data);
        foreach (var word in words)
            crc = BitOperations.Crc32C(crc, BitConverter.IsLittleEndian ? word : BinaryPrimitives.ReverseEndianness(word));
        foreach (var b in data[(words.Length * sizeof(ulong))..])
            crc = BitOperations.Crc32C(crc, b);
        return crc;
    }
}
