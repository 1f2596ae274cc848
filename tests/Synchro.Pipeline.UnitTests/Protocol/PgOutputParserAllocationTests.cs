using System.Diagnostics;
using Synchro.Pipeline.Protocol;

namespace Synchro.Pipeline.Tests.Protocol;

/// <summary>
/// The allocation budget of the row path: parsing an Insert, Update or Delete and reading every
/// column value allocates nothing. (Throughput is measured by the benchmarks, not here.)
/// </summary>
/// <remarks>
/// Measured in the steady state: the runtime's tiered compilation may allocate on the test thread
/// while it re-compiles hot methods, so the path is warmed up first and the best of several whole
/// passes must be zero.
/// </remarks>
public sealed class PgOutputParserAllocationTests
{
    private const int MeasuredPasses = 5;

    [Fact]
    public void Row_messages_allocate_nothing()
    {
        var frames = FrameStream.Split(BenchStream.Load());
        var parser = new PgOutputParser(new PgOutputOptions(1));
        var handler = new DigestHandler();
        WarmUp(() =>
        {
            foreach (var (start, _, payload) in frames)
                parser.Parse(payload, start, ref handler);
        });

        var best = long.MaxValue;
        var rows = 0;
        for (var pass = 0; pass < MeasuredPasses; pass++)
        {
            long allocated = 0;
            rows = 0;
            foreach (var (start, _, payload) in frames)
            {
                if (payload[0] is not ((byte)'I' or (byte)'U' or (byte)'D'))
                {
                    parser.Parse(payload, start, ref handler);
                    continue;
                }
                var before = GC.GetAllocatedBytesForCurrentThread();
                parser.Parse(payload, start, ref handler);
                allocated += GC.GetAllocatedBytesForCurrentThread() - before;
                rows++;
            }
            best = Math.Min(best, allocated);
        }

        Assert.Equal(2000, rows);
        Assert.Equal(0, best);
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
        var segmented = FrameStream.Segmented(rowsOnly, [rowsOnly.Length / 3, rowsOnly.Length / 2]);
        WarmUp(() => Parse(reader, parser, ref handler, segmented));

        var best = long.MaxValue;
        var messages = 0;
        for (var pass = 0; pass < MeasuredPasses; pass++)
        {
            var before = GC.GetAllocatedBytesForCurrentThread();
            messages = Parse(reader, parser, ref handler, segmented);
            best = Math.Min(best, GC.GetAllocatedBytesForCurrentThread() - before);
        }

        Assert.Equal(2000, messages);
        Assert.Equal(0, best);
    }

    // Long enough for tiered compilation's call counting (100 ms delay) to promote the hot methods.
    private static void WarmUp(Action pass)
    {
        var clock = Stopwatch.StartNew();
        for (var i = 0; i < 3 || clock.ElapsedMilliseconds < 500; i++)
            pass();
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
