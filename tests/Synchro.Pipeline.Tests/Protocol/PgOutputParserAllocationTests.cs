using Synchro.Pipeline.Protocol;

namespace Synchro.Pipeline.Tests.Protocol;

/// <summary>
/// The allocation budget of the row path: parsing an Insert, Update or Delete and reading every
/// column value allocates nothing. (Throughput is measured by the benchmarks, not here.)
/// </summary>
public sealed class PgOutputParserAllocationTests
{
    [Fact]
    public void Row_messages_allocate_nothing()
    {
        var frames = FrameStream.Split(BenchStream.Load());
        var parser = new PgOutputParser(new PgOutputOptions(1));
        var handler = new DigestHandler();
        // First pass: fills the relation cache and JIT-compiles the path.
        foreach (var (start, _, payload) in frames)
            parser.Parse(payload, start, ref handler);

        long allocated = 0;
        var rows = 0;
        foreach (var (start, _, payload) in frames)
        {
            if (payload[0] is not ((byte)'I' or (byte)'U' or (byte)'D'))
                continue;
            var before = GC.GetAllocatedBytesForCurrentThread();
            parser.Parse(payload, start, ref handler);
            allocated += GC.GetAllocatedBytesForCurrentThread() - before;
            rows++;
        }

        Assert.Equal(2000, rows);
        Assert.Equal(0, allocated);
    }

    [Fact]
    public void Framed_row_stream_allocates_nothing_per_message()
    {
        var stream = BenchStream.Load();
        var rowsOnly = FrameStream.Build(FrameStream.Split(stream).Where(f => f.Payload[0] is (byte)'I' or (byte)'U'));
        var parser = new PgOutputParser(new PgOutputOptions(1));
        var handler = new DigestHandler();
        foreach (var (start, _, payload) in FrameStream.Split(stream).Where(f => f.Payload[0] == (byte)'R'))
            parser.Parse(payload, start, ref handler);
        using var reader = new WalFrameReader();
        Parse(reader, parser, ref handler, FrameStream.Segmented(rowsOnly, [rowsOnly.Length / 3]));

        var segmented = FrameStream.Segmented(rowsOnly, [rowsOnly.Length / 3, rowsOnly.Length / 2]);

        var before = GC.GetAllocatedBytesForCurrentThread();
        var messages = Parse(reader, parser, ref handler, segmented);
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal(2000, messages);
        Assert.Equal(0, allocated);
    }

    private static int Parse(WalFrameReader reader, PgOutputParser parser, ref DigestHandler handler, System.Buffers.ReadOnlySequence<byte> buffer)
    {
        var messages = 0;
        while (reader.TryRead(ref buffer, out var frame))
        {
            parser.Parse(frame.Payload, frame.WalStart, ref handler);
            messages++;
        }
        return messages;
    }
}
