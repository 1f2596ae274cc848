using BenchmarkDotNet.Attributes;
using Synchro.Pipeline.Protocol;
using Synchro.Pipeline.Decoding;

namespace Synchro.Pipeline.Benchmarks;

/// <summary>
/// Decodes the captured stream (bench-rows.v1.bin) into batches of registered-table changes, as the
/// pipeline's decoder stage does; results are per message (<see cref="MessagesPerStream"/> per invocation).
/// </summary>
/// <remarks>
/// Ours: one long-lived <c>PgOutputParser</c> driving one <c>ChangeDecoder</c>, as in the pipeline, (registered-table filtering, id, soft-delete and
/// owner column extraction, batch cutting at <see cref="DecoderRun.BatchRows"/> rows), every batch handed
/// back to the pool as the writer does. Baseline: the dictionary decoder most consumers write, then per row
/// a registration lookup by table name, the id/soft-delete/owner values looked up by column name, and one
/// change object per row collected into per-batch lists.
/// </remarks>
[MemoryDiagnoser]
[Config(typeof(ThroughputConfig))]
public class DecoderBenchmarks
{
    public const int MessagesPerStream = PgOutputParserBenchmarks.MessagesPerStream;

    private BenchFrame[] _frames = [];
    private (PgOutputParser, ChangeDecoder) _decoder;

    [GlobalSetup]
    public void Setup()
    {
        var fixture = BenchRowsFixture.Shared;
        if (fixture.MessageCount != MessagesPerStream)
            throw new InvalidOperationException($"{fixture}: expected {MessagesPerStream} messages.");
        _frames = fixture.Frames;
        _decoder = DecoderRun.CreateDecoder();
        Console.WriteLine($"// Fixture: {fixture}");

        var ours = DecoderRun.Ours(_frames);
        var theirs = DecoderRun.Baseline(_frames);
        if (ours != theirs)
            throw new InvalidOperationException($"Decoder and baseline disagree: ours {ours}, baseline {theirs}.");
        Console.WriteLine($"// Validation: ChangeDecoder and the baseline agree ({ours}).");

        var bytes = BenchSetupChecks.AllocatedBy(() => DecoderRun.Ours(_frames, _decoder));
        Console.WriteLine($"// Allocated per invocation (whole stream, Relation message included) by ChangeDecoder: {bytes:N0} bytes = {(double)bytes / fixture.RowMessageCount:F2} B/row message");
        var steady = DecoderRun.AllocatedByRowMessages(_frames);
        Console.WriteLine($"// Allocated by ChangeDecoder over the {fixture.RowMessageCount:N0} row messages alone (warm decoder): {steady:N0} bytes");
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = MessagesPerStream)]
    public DecoderTotals DictionaryDecoder() => DecoderRun.Baseline(_frames);

    [Benchmark(OperationsPerInvoke = MessagesPerStream)]
    public DecoderTotals PgOutputParser_ChangeDecoder() => DecoderRun.Ours(_frames, _decoder);
}
