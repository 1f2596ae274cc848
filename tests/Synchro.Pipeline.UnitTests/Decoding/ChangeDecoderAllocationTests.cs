using System.Diagnostics;
using Microsoft.Extensions.Logging.Abstractions;
using Synchro.Pipeline.Protocol;
using Synchro.Pipeline.Registry;
using Synchro.Pipeline.Tests.Protocol;
using Synchro.Pipeline.Decoding;

namespace Synchro.Pipeline.Tests.Decoding;

/// <summary>
/// The allocation budget of the decode path: parsing a row message of a registered table and decoding it
/// into its batch (filtering, id/soft-delete/owner extraction, batch cutting) allocates nothing, once the
/// decoder's batch pool and arenas are warm. (Throughput is measured by the benchmarks, not here.)
/// </summary>
/// <remarks>Measured as <see cref="PgOutputParserAllocationTests"/> does: warmed up, best of several whole passes.</remarks>
public sealed class ChangeDecoderAllocationTests
{
    private const int MeasuredPasses = 5;

    // Smaller than a transaction of the stream, so batches are cut inside the measured row messages.
    private static readonly BatchLimits s_limits = new(MaxRows: 300, MaxBytes: 1 << 20);

    private static readonly TableRegistry s_registry = new TableRegistry()
        .Add(new TableRegistration("orders") { OwnerColumn = "owner_id" });

    // A SQL function rule: every change carries the whole row too.
    private static readonly TableRegistry s_fullRowRegistry = new TableRegistry()
        .Add(new TableRegistration("orders") { OwnerColumn = "owner_id", BucketFunction = "rules.orders" });

    // An id of two columns: the decoder checks each one, still allocating nothing (the writer makes the JSON id string).
    private static readonly TableRegistry s_compositeRegistry = new TableRegistry()
        .Add(new TableRegistration("orders") { IdColumns = ["id", "owner_id"], OwnerColumn = "owner_id" });

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Row_messages_of_registered_tables_decode_without_allocating(bool fullRow) => AssertDecodesWithoutAllocating(binary: false, fullRow);

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Row_messages_of_a_table_with_a_composite_id_decode_without_allocating(bool binary)
        => AssertDecodesWithoutAllocating(binary, fullRow: false, s_compositeRegistry);

    /// <summary>Binary tuple mode: the uuid id and owner are converted from their 16 bytes into the arena, still allocating nothing.</summary>
    [Fact]
    public void Binary_row_messages_decode_without_allocating() => AssertDecodesWithoutAllocating(binary: true, fullRow: false);

    private static void AssertDecodesWithoutAllocating(bool binary, bool fullRow, TableRegistry? registry = null)
    {
        var frames = FrameStream.Split(binary ? BenchStream.LoadBinary() : BenchStream.Load());
        var parser = new PgOutputParser(new PgOutputOptions(1, binary: binary));
        var decoder = new ChangeDecoder(registry ?? (fullRow ? s_fullRowRegistry : s_registry), s_limits, Lsn.Invalid, NullLogger.Instance) { BinaryTuples = binary };
        var digest = new Digest();
        WarmUp(() =>
        {
            foreach (var (start, _, payload) in frames)
                Decode(parser, decoder, start, payload, ref digest);
        });

        decoder.CutAtIdle();
        foreach (var warm in DecoderItems.TakeAll(decoder))
            (warm as ChangeBatch)?.Release();
        digest = new Digest();
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
                    Decode(parser, decoder, start, payload, ref digest);
                    continue;
                }
                var before = GC.GetAllocatedBytesForCurrentThread();
                Decode(parser, decoder, start, payload, ref digest);
                allocated += GC.GetAllocatedBytesForCurrentThread() - before;
                rows++;
            }
            best = Math.Min(best, allocated);
        }
        digest.Consume(DecoderItems.CutIdleBatch(decoder));

        Assert.Equal(2000, rows);
        Assert.Equal(0, best);
        // The measured path did the work: batches cut and every change's id and owner read.
        Assert.True(digest.Batches >= MeasuredPasses * 6, $"{digest.Batches} batches");
        Assert.Equal(MeasuredPasses * 1000, digest.Inserts);
        Assert.Equal(MeasuredPasses * 1000, digest.Updates);
        Assert.Equal(MeasuredPasses * 2000 * 36, digest.IdBytes);
        Assert.Equal(MeasuredPasses * 2000 * 36, digest.OwnerBytes);
        Assert.Equal(fullRow ? MeasuredPasses * 2000 : 0, digest.FullRows);
    }

    [Fact]
    public void Decoded_values_read_back_as_the_rows_text()
    {
        var decoder = new ChangeDecoder(s_registry, new BatchLimits(10_000, 1 << 30), Lsn.Invalid, NullLogger.Instance);
        var parser = new PgOutputParser(new PgOutputOptions(1));
        foreach (var (start, _, payload) in FrameStream.Split(BenchStream.Load()))
        {
            var handler = new DecoderStage.Handler(decoder, payload.Length);
            parser.Parse(payload, start, ref handler);
        }
        var batch = DecoderItems.CutIdleBatch(decoder);

        Assert.Equal(2000, batch.Count);
        var owner = s_registry.First().ReferencedColumnIndex("owner_id");
        Assert.Equal("00000000-0000-4000-8000-000000000001", batch.RecordId(0));
        Assert.Equal("00000000-0000-4000-9000-000000000001", batch.GetString(batch[0], owner));
        Assert.Null(batch.GetString(batch[0], s_registry.First().ReferencedColumnIndex("deleted_at")));
        Assert.Equal(ChangeOperation.Update, batch[1999].Operation);
        Assert.Equal("00000000-0000-4000-8000-0000000003e8", batch.RecordId(1999));

        batch.Release();
        Assert.Throws<InvalidOperationException>(batch.Release);
    }

    private static void Decode(PgOutputParser parser, ChangeDecoder decoder, Lsn start, byte[] payload, ref Digest digest)
    {
        var handler = new DecoderStage.Handler(decoder, payload.Length);
        parser.Parse(payload, start, ref handler);
        while (decoder.TryTakeReady(out var item))
        {
            if (item is ChangeBatch batch)
                digest.Consume(batch);
        }
    }

    // Long enough for tiered compilation's call counting (100 ms delay) to promote the hot methods.
    private static void WarmUp(Action pass)
    {
        var clock = Stopwatch.StartNew();
        for (var i = 0; i < 3 || clock.ElapsedMilliseconds < 500; i++)
            pass();
    }

    /// <summary>What the writer would read of each batch, then the batch handed back as the writer does.</summary>
    private struct Digest
    {
        public int Batches;
        public int Inserts;
        public int Updates;
        public long IdBytes;
        public long OwnerBytes;
        public int FullRows;

        public void Consume(ChangeBatch batch)
        {
            Batches++;
            for (var i = 0; i < batch.Count; i++)
            {
                var change = batch[i];
                if (change.Operation == ChangeOperation.Insert)
                    Inserts++;
                else if (change.Operation == ChangeOperation.Update)
                    Updates++;
                IdBytes += batch.Text(batch.Value(change, 0)).Length;
                OwnerBytes += batch.Text(batch.Value(change, change.Table.ReferencedColumnIndex("owner_id"))).Length;
                if (change.RowValue >= 0 && batch.Text(batch.Value(change.RowValue)).SequenceEqual(batch.Text(batch.Value(change, 0))))
                    FullRows++;
            }
            batch.Release();
        }
    }
}
