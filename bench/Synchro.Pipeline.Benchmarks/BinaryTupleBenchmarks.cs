using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using Synchro.Pipeline.Protocol;
using Synchro.Pipeline.Registry;
using Synchro.Pipeline.Decoding;

namespace Synchro.Pipeline.Benchmarks;

/// <summary>
/// Binary tuple mode against text mode: the same workload captured both ways (bench-rows.v1.bin and
/// bench-rows-binary.v1.bin), decoded by the pipeline's parser and decoder into batches; results are per message.
/// </summary>
/// <remarks>
/// Text mode copies each referenced column's text into the batch arena (after a UTF-8 check); binary mode converts
/// the uuid's 16 bytes (and an int4's 4) into the same text there, and reads a soft-delete column by presence only.
/// Binary mode's stream is 25% smaller, so the parser also walks fewer bytes. <see cref="Registration"/>: the id and
/// owner (both uuid) as the pipeline's benchmarks register them, or wider: an int4 parent key and a timestamptz
/// soft-delete column too.
/// </remarks>
[MemoryDiagnoser]
[Config(typeof(MessagesConfig))]
public class BinaryTupleBenchmarks
{
    private const int MessagesPerStream = PgOutputParserBenchmarks.MessagesPerStream;

    private BenchFrame[] _text = [];
    private BenchFrame[] _binary = [];
    private (PgOutputParser, ChangeDecoder) _textDecoder;
    private (PgOutputParser, ChangeDecoder) _binaryDecoder;

    /// <summary>Which columns are referenced.</summary>
    [Params("IdOwner", "Wide")]
    public string Registration { get; set; } = "IdOwner";

    [GlobalSetup]
    public void Setup()
    {
        var text = BenchRowsFixture.Shared;
        var binary = BenchRowsFixture.Binary;
        if (text.MessageCount != MessagesPerStream || binary.MessageCount != MessagesPerStream)
            throw new InvalidOperationException($"{text}; {binary}: expected {MessagesPerStream} messages each.");
        _text = text.Frames;
        _binary = binary.Frames;
        Console.WriteLine($"// Fixtures: {text}; {binary}");

        var registry = Registration == "Wide"
            ? new TableRegistry().Add(new TableRegistration("orders")
            {
                OwnerColumn = DecoderRun.OwnerColumn, SoftDeleteColumn = "updated_at", ParentTable = "customers", ParentForeignKeyColumn = "quantity",
            })
            : DecoderRun.Registry;
        _textDecoder = DecoderRun.CreateDecoder(registry, binary: false);
        _binaryDecoder = DecoderRun.CreateDecoder(registry, binary: true);

        var fromText = DecoderRun.Ours(_text, _textDecoder);
        var fromBinary = DecoderRun.Ours(_binary, _binaryDecoder);
        if (fromText != fromBinary)
            throw new InvalidOperationException($"Text and binary mode disagree: text {fromText}, binary {fromBinary}.");
        Console.WriteLine($"// Validation: text and binary mode decode the same changes ({fromBinary}).");
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = MessagesPerStream)]
    public DecoderTotals TextMode() => DecoderRun.Ours(_text, _textDecoder);

    [Benchmark(OperationsPerInvoke = MessagesPerStream)]
    public DecoderTotals BinaryMode() => DecoderRun.Ours(_binary, _binaryDecoder);

    /// <summary>Messages/s only: the two streams' bytes per message differ, so one MB/s figure would mislead.</summary>
    private sealed class MessagesConfig : ManualConfig
    {
        public MessagesConfig() => AddColumn(new ThroughputColumn(ThroughputColumn.Measure.Messages));
    }
}
