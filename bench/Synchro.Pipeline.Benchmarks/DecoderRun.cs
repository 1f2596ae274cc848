using Microsoft.Extensions.Logging.Abstractions;
using Synchro.Pipeline.Protocol;
using Synchro.Pipeline.Registry;
using Synchro.Pipeline.Decoding;

namespace Synchro.Pipeline.Benchmarks;

/// <summary>What a decoder run produced, identical for ours and the baseline when both are right.</summary>
public readonly record struct DecoderTotals(long Changes, long Updates, long Batches, long IdBytes, long OwnerBytes, ulong Hash);

/// <summary>Drives our decoder and the baseline over the benchmark stream with the same registration and batch size.</summary>
internal static class DecoderRun
{
    /// <summary>Rows per batch: the stream's 2,000 rows give two batches of changes.</summary>
    public const int BatchRows = 1_000;

    public const string OwnerColumn = "owner_id";

    private const ulong FnvOffset = 14695981039346656037;

    public static readonly TableRegistry Registry = new TableRegistry()
        .Add(new TableRegistration("orders") { OwnerColumn = OwnerColumn })
        .Add(new TableRegistration("customers") { OwnerColumn = OwnerColumn });

    private static readonly BatchLimits s_limits = new(BatchRows, long.MaxValue);

    /// <summary>A decoder as the pipeline holds one: for the life of the stream.</summary>
    public static (PgOutputParser Parser, ChangeDecoder Decoder) CreateDecoder()
        => (new PgOutputParser(BenchSetupChecks.Options), new ChangeDecoder(Registry, s_limits, Lsn.Invalid, NullLogger.Instance));

    /// <summary>A decoder for a stream started with <c>binary 'true'</c> (<see cref="BenchRowsFixture.Binary"/>), or for text mode.</summary>
    public static (PgOutputParser Parser, ChangeDecoder Decoder) CreateDecoder(TableRegistry registry, bool binary)
        => (new PgOutputParser(new PgOutputOptions(1, binary: binary)), new ChangeDecoder(registry, s_limits, Lsn.Invalid, NullLogger.Instance) { BinaryTuples = binary });

    /// <summary>Decodes the stream once more with <paramref name="decoder"/> (its Relation message renews the mapping).</summary>
    public static DecoderTotals Ours(BenchFrame[] frames, (PgOutputParser Parser, ChangeDecoder Decoder) decoder)
    {
        var (parser, changes) = decoder;
        var totals = new Accumulator();
        foreach (var frame in frames)
            Decode(parser, changes, frame, ref totals);
        changes.CutAtIdle();
        while (changes.TryTakeReady(out var item))
        {
            if (item is ChangeBatch last)
                totals.Consume(last);
        }
        return totals.Result;
    }

    public static DecoderTotals Ours(BenchFrame[] frames) => Ours(frames, CreateDecoder());

    /// <summary>Bytes allocated while the row messages alone are decoded, by a warm decoder (relation cached, batches recycled).</summary>
    public static long AllocatedByRowMessages(BenchFrame[] frames)
    {
        var parser = new PgOutputParser(BenchSetupChecks.Options);
        var decoder = new ChangeDecoder(Registry, s_limits, Lsn.Invalid, NullLogger.Instance);
        var totals = new Accumulator();
        long allocated = 0;
        for (var pass = 0; pass < 5; pass++)
        {
            allocated = 0;
            foreach (var frame in frames)
            {
                var before = GC.GetAllocatedBytesForCurrentThread();
                Decode(parser, decoder, frame, ref totals);
                if (frame.IsRow)
                    allocated += GC.GetAllocatedBytesForCurrentThread() - before;
            }
        }
        return allocated;
    }

    public static DecoderTotals Baseline(BenchFrame[] frames)
    {
        var decoder = new StringDecodingBaseline();
        var tables = new Dictionary<(string Schema, string Name), TableRegistration>();
        foreach (var table in Registry)
            tables[(table.Schema, table.Name)] = table;
        var totals = new Accumulator();
        var batch = new List<BaselineChange>();
        foreach (var frame in frames)
        {
            if (decoder.Decode(frame.Payload) is not BaselineRowChange row
                || !tables.TryGetValue((row.Relation.Schema, row.Relation.Name), out var table))
                continue;
            var values = row.NewRow ?? row.OldRow!;
            var id = values[table.IdColumn] ?? throw new InvalidOperationException("A row without an id.");
            var deleted = table.SoftDeleteColumn is { } softDelete && values.TryGetValue(softDelete, out var at) && at is not null;
            var operation = row.Kind switch
            {
                'I' => ChangeOperation.Insert,
                'U' => deleted ? ChangeOperation.Delete : ChangeOperation.Update,
                _ => ChangeOperation.Delete,
            };
            values.TryGetValue(OwnerColumn, out var owner);
            batch.Add(new BaselineChange(table, id, operation, owner));
            if (batch.Count >= BatchRows)
            {
                totals.Consume(batch);
                batch = [];
            }
        }
        if (batch.Count > 0)
            totals.Consume(batch);
        return totals.Result;
    }

    private static void Decode(PgOutputParser parser, ChangeDecoder decoder, BenchFrame frame, ref Accumulator totals)
    {
        var handler = new DecoderStage.Handler(decoder, frame.Payload.Length);
        parser.Parse(frame.Payload, frame.Lsn, ref handler);
        while (decoder.TryTakeReady(out var item))
        {
            if (item is ChangeBatch batch)
                totals.Consume(batch);
        }
    }

    private sealed record BaselineChange(TableRegistration Table, string RecordId, ChangeOperation Operation, string? Owner);

    /// <summary>The same fold over both sides' batches; ours hands each batch back as the writer does.</summary>
    private struct Accumulator()
    {
        private long _changes;
        private long _updates;
        private long _batches;
        private long _idBytes;
        private long _ownerBytes;
        private ulong _hash = FnvOffset;

        public readonly DecoderTotals Result => new(_changes, _updates, _batches, _idBytes, _ownerBytes, _hash);

        public void Consume(ChangeBatch batch)
        {
            // A transaction's last chunk may hold no change, only its commit; the baseline has no such batch.
            if (batch.Count > 0)
                _batches++;
            for (var i = 0; i < batch.Count; i++)
            {
                var change = batch[i];
                var id = batch.Text(batch.Value(change, 0));
                var owner = batch.Text(batch.Value(change, change.Table.ReferencedColumnIndex(OwnerColumn)));
                Add(change.Operation, id.Length, id[^1], owner.Length);
            }
            batch.Release();
        }

        public void Consume(List<BaselineChange> batch)
        {
            _batches++;
            foreach (var change in batch)
                Add(change.Operation, change.RecordId.Length, change.RecordId[^1], change.Owner?.Length ?? 0);
        }

        private void Add(ChangeOperation operation, int idLength, int idLast, int ownerLength)
        {
            _changes++;
            if (operation == ChangeOperation.Update)
                _updates++;
            _idBytes += idLength;
            _ownerBytes += ownerLength;
            _hash = (_hash * 31) + (ulong)idLength + (ulong)idLast;
        }
    }
}
