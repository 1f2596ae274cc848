using System.Buffers;
using BenchmarkDotNet.Attributes;
using Synchro.Pipeline.Protocol;

namespace Synchro.Pipeline.Benchmarks;

/// <summary>
/// Decodes the whole captured stream (bench-rows.v1.bin) per invocation; results are per message
/// (<see cref="MessagesPerStream"/> operations per invocation).
/// </summary>
/// <remarks>
/// Every benchmark touches every column value of every row (<see cref="RowTotals"/>). Each invocation
/// uses a fresh decoder, so the Relation message is parsed again and its strings are part of the cost.
/// </remarks>
[MemoryDiagnoser]
[Config(typeof(ThroughputConfig))]
public class PgOutputParserBenchmarks
{
    /// <summary>Messages in bench-rows.v1.bin (2 Begin, 1 Relation, 1,000 Insert, 1,000 Update, 2 Commit); checked at setup.</summary>
    public const int MessagesPerStream = 2005;

    private BenchFrame[] _frames = [];
    private byte[] _stream = [];

    [GlobalSetup]
    public void Setup()
    {
        var fixture = BenchRowsFixture.Shared;
        if (fixture.MessageCount != MessagesPerStream)
            throw new InvalidOperationException($"{fixture}: expected {MessagesPerStream} messages; update {nameof(MessagesPerStream)}.");
        _frames = fixture.Frames;
        _stream = fixture.Stream;
        Console.WriteLine($"// Fixture: {fixture}");

        BenchSetupChecks.ValidateBaseline(fixture);

        var expected = BenchSetupChecks.RunParser(_frames);
        if (PgOutputParser() != expected.Checksum || PgOutputParser_FramedSequence() != expected.Checksum || StringDecoder() != expected.Checksum)
            throw new InvalidOperationException("The benchmarks' checksums disagree.");

        var rowBytes = BenchSetupChecks.AllocatedByRowMessages(_frames);
        Console.WriteLine($"// Allocated by PgOutputParser over the {fixture.RowMessageCount:N0} row messages alone (relation cached, warmed up): {rowBytes:N0} bytes"
            + $" = {(double)rowBytes / fixture.RowMessageCount:F2} B/row message");
        foreach (var (name, action) in new (string, Action)[]
        {
            (nameof(StringDecoder), () => StringDecoder()),
            (nameof(PgOutputParser), () => PgOutputParser()),
            (nameof(PgOutputParser_FramedSequence), () => PgOutputParser_FramedSequence()),
        })
        {
            var bytes = BenchSetupChecks.AllocatedBy(action);
            Console.WriteLine($"// Allocated per invocation (whole stream) by {name}: {bytes:N0} bytes = {(double)bytes / MessagesPerStream:F2} B/message");
        }
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = MessagesPerStream)]
    public long StringDecoder()
    {
        var decoder = new StringDecodingBaseline();
        var totals = new RowTotals();
        foreach (var frame in _frames)
            BaselineConsumer.Consume(ref totals, decoder.Decode(frame.Payload));
        return totals.Checksum;
    }

    [Benchmark(OperationsPerInvoke = MessagesPerStream)]
    public long PgOutputParser()
    {
        var parser = new PgOutputParser(BenchSetupChecks.Options);
        var handler = new RowTouchHandler();
        foreach (var frame in _frames)
            parser.Parse(frame.Payload, frame.Lsn, ref handler);
        return handler.Totals.Checksum;
    }

    /// <summary>As the pipeline reads: frames cut from a <see cref="ReadOnlySequence{T}"/> over the whole byte stream.</summary>
    [Benchmark(OperationsPerInvoke = MessagesPerStream)]
    public long PgOutputParser_FramedSequence()
    {
        var parser = new PgOutputParser(BenchSetupChecks.Options);
        var handler = new RowTouchHandler();
        var buffer = new ReadOnlySequence<byte>(_stream);
        using var reader = new WalFrameReader();
        while (reader.TryRead(ref buffer, out var frame))
            parser.Parse(frame.Payload, frame.WalStart, ref handler);
        return handler.Totals.Checksum;
    }
}
