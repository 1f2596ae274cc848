using System.Buffers;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using Synchro.Pipeline.Protocol;

namespace Synchro.Pipeline.Benchmarks;

/// <summary>
/// Decodes the whole captured stream (bench-rows.v1.bin) per invocation; results are per message
/// (<see cref="MessagesPerStream"/> operations per invocation).
/// </summary>
/// <remarks>
/// Two groups, each with its own baseline: <see cref="IdAndOwner"/> takes the id and owner values of each
/// row (what the pipeline's decoder needs), <see cref="EveryColumn"/> touches every column value. The
/// baseline decodes every column into a string either way; that is the cost being compared. Each
/// invocation uses a fresh decoder, so the Relation message is parsed again and its strings are part of the cost.
/// </remarks>
[MemoryDiagnoser]
[Config(typeof(ThroughputConfig))]
[GroupBenchmarksBy(BenchmarkLogicalGroupRule.ByCategory)]
[CategoriesColumn]
public class PgOutputParserBenchmarks
{
    /// <summary>The consumer reads the id and owner columns, as the pipeline's decoder does.</summary>
    public const string IdAndOwnerCategory = "IdAndOwner";

    /// <summary>The consumer reads no value (parse cost alone; no baseline).</summary>
    public const string NoColumnsCategory = "NoColumns";

    /// <summary>The consumer reads every column value.</summary>
    public const string EveryColumnCategory = "EveryColumn";

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

        var expected = BenchSetupChecks.RunParser<EveryColumn>(_frames);
        if (PgOutputParser_EveryColumn() != expected.Checksum || StringDecoder_EveryColumn() != expected.Checksum
            || PgOutputParser_FramedSequence() != PgOutputParser() || StringDecoder() != PgOutputParser())
            throw new InvalidOperationException("The benchmarks' checksums disagree.");

        var rowBytes = BenchSetupChecks.AllocatedByRowMessages(_frames);
        Console.WriteLine($"// Allocated by PgOutputParser over the {fixture.RowMessageCount:N0} row messages alone (relation cached, warmed up): {rowBytes:N0} bytes"
            + $" = {(double)rowBytes / fixture.RowMessageCount:F2} B/row message");
        foreach (var (name, action) in new (string, Action)[]
        {
            (nameof(StringDecoder), () => StringDecoder()),
            (nameof(PgOutputParser), () => PgOutputParser()),
            (nameof(PgOutputParser_FramedSequence), () => PgOutputParser_FramedSequence()),
            (nameof(StringDecoder_EveryColumn), () => StringDecoder_EveryColumn()),
            (nameof(PgOutputParser_EveryColumn), () => PgOutputParser_EveryColumn()),
        })
        {
            var bytes = BenchSetupChecks.AllocatedBy(action);
            Console.WriteLine($"// Allocated per invocation (whole stream) by {name}: {bytes:N0} bytes = {(double)bytes / MessagesPerStream:F2} B/message");
        }
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = MessagesPerStream)]
    [BenchmarkCategory(IdAndOwnerCategory)]
    public long StringDecoder() => BenchSetupChecks.RunBaseline(_frames, BaselineConsumer.ConsumeIdAndOwner).Checksum;

    [Benchmark(OperationsPerInvoke = MessagesPerStream)]
    [BenchmarkCategory(IdAndOwnerCategory)]
    public long PgOutputParser() => BenchSetupChecks.RunParser<IdAndOwner>(_frames).Checksum;

    [Benchmark(OperationsPerInvoke = MessagesPerStream)]
    [BenchmarkCategory(IdAndOwnerCategory)]
    public long PgOutputParser_FramedSequence()
    {
        var parser = new PgOutputParser(BenchSetupChecks.Options);
        var handler = new RowHandler<IdAndOwner>();
        var buffer = new ReadOnlySequence<byte>(_stream);
        using var reader = new WalFrameReader();
        while (reader.TryRead(ref buffer, out var frame))
            parser.Parse(frame.Payload, frame.WalStart, ref handler);
        return handler.Totals.Checksum;
    }

    /// <summary>The parser alone (every value validated and located, none read): the floor under the others.</summary>
    [Benchmark(OperationsPerInvoke = MessagesPerStream)]
    [BenchmarkCategory(NoColumnsCategory)]
    public long PgOutputParser_NoColumns() => BenchSetupChecks.RunParser<NoColumns>(_frames).Checksum;

    [Benchmark(Baseline = true, OperationsPerInvoke = MessagesPerStream)]
    [BenchmarkCategory(EveryColumnCategory)]
    public long StringDecoder_EveryColumn() => BenchSetupChecks.RunBaseline(_frames, BaselineConsumer.Consume).Checksum;

    [Benchmark(OperationsPerInvoke = MessagesPerStream)]
    [BenchmarkCategory(EveryColumnCategory)]
    public long PgOutputParser_EveryColumn() => BenchSetupChecks.RunParser<EveryColumn>(_frames).Checksum;
}
