using System.Buffers;
using Synchro.Pipeline.Protocol;

namespace Synchro.Pipeline.Tests.Protocol;

/// <summary>Builds and splits byte streams of <see cref="WalFrame"/>s, the fixtures' file format.</summary>
internal static class FrameStream
{
    public static byte[] Build(IEnumerable<(Lsn Start, Lsn End, byte[] Payload)> frames)
    {
        var writer = new ArrayBufferWriter<byte>();
        foreach (var (start, end, payload) in frames)
            WalFrame.Write(writer, start, end, payload);
        return writer.WrittenSpan.ToArray();
    }

    public static List<(Lsn Start, Lsn End, byte[] Payload)> Split(byte[] stream)
    {
        var result = new List<(Lsn, Lsn, byte[])>();
        var buffer = new ReadOnlySequence<byte>(stream);
        using var reader = new WalFrameReader();
        while (reader.TryRead(ref buffer, out var frame))
            result.Add((frame.WalStart, frame.WalEnd, frame.Payload.ToArray()));
        if (!buffer.IsEmpty)
            throw new InvalidDataException($"{buffer.Length} trailing bytes are not a whole frame");
        return result;
    }

    /// <summary>A sequence of segments cut at <paramref name="cuts"/> (ascending offsets).</summary>
    public static ReadOnlySequence<byte> Segmented(byte[] bytes, IReadOnlyList<int> cuts)
    {
        if (cuts.Count == 0)
            return new ReadOnlySequence<byte>(bytes);
        Segment? first = null, last = null;
        var previous = 0;
        foreach (var cut in cuts.Append(bytes.Length))
        {
            var memory = bytes.AsMemory(previous, cut - previous);
            last = last is null ? first = new Segment(memory, 0) : last.Append(memory);
            previous = cut;
        }
        return new ReadOnlySequence<byte>(first!, 0, last!, last!.Memory.Length);
    }

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(ReadOnlyMemory<byte> memory, long runningIndex)
        {
            Memory = memory;
            RunningIndex = runningIndex;
        }

        public Segment Append(ReadOnlyMemory<byte> memory)
        {
            var next = new Segment(memory, RunningIndex + Memory.Length);
            Next = next;
            return next;
        }
    }
}
