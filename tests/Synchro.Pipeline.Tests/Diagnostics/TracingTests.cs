using System.Diagnostics;
using System.Diagnostics.Metrics;
using Synchro.Pipeline.Diagnostics;
using Synchro.Pipeline.Maintenance;
using Synchro.Pipeline.Tests.Infrastructure;
using Synchro.Pipeline.Tests.Pipeline;

namespace Synchro.Pipeline.Tests.Diagnostics;

/// <summary>
/// The spans of the <c>Synchro.Pipeline</c> activity source on a real slot: one decode, write, assign and commit per batch
/// (never per change), linked decode → write → commit → confirm; the initial snapshot's and a replay's chunks; and the
/// metrics' bucket advice and slot tag.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class TracingTests(PostgresServerFixture postgres)
{
    private const int BatchRows = 400;

    [Fact]
    public async Task Each_batch_is_one_trace_from_its_decode_to_the_confirm_of_its_position()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "tracing_batches");
        // Rows before the slot: the initial snapshot loads them in chunks of MaxBatchRows.
        await harness.ExecuteAsync("INSERT INTO categories SELECT i, 'c' || i FROM generate_series(1, 1000) i");
        using var spans = new ActivityRecorder();
        var options = harness.Options(maxBatchRows: BatchRows);
        await harness.StartAsync(options);
        var slot = harness.Slot;

        // The initial snapshot: one trace, a chunk span per FETCH under it.
        var snapshot = Assert.Single(spans.Of(PipelineTracing.Snapshot, slot));
        Assert.Equal(1000L, snapshot.GetTagItem("synchro.rows"));
        Assert.Equal(default, snapshot.ParentSpanId);
        var chunks = spans.Of(PipelineTracing.SnapshotChunk, slot);
        Assert.All(chunks, c => Assert.Equal((snapshot.TraceId, snapshot.SpanId), (c.TraceId, c.ParentSpanId)));
        var categoryChunks = chunks.Where(c => (string?)c.GetTagItem("synchro.table") == "public.categories" && (int)c.GetTagItem("synchro.rows")! > 0)
            .OrderBy(c => c.StartTimeUtc).ToList();
        Assert.Equal([400, 400, 200], categoryChunks.Select(c => (int)c.GetTagItem("synchro.rows")!));
        Assert.All(categoryChunks, c => Assert.Equal(c.GetTagItem("synchro.rows"), c.GetTagItem("synchro.edges")));

        // 1,000 changes in one source transaction: three batches (chunks of it), not a span per change.
        await harness.ExecuteAsync("INSERT INTO categories SELECT i, 'n' || i FROM generate_series(1001, 2000) i");
        await harness.WaitForChangelogAsync(1000);
        await harness.ExecuteAsync("INSERT INTO orders (id, user_id) VALUES ('00000000-0000-0000-0000-000000000001', 'alice')");
        await harness.ExecuteAsync("UPDATE orders SET total = 3 WHERE user_id = 'alice'");
        await harness.WaitForChangelogAsync(1002);
        // Every traced commit is confirmed to the server: as many commits covered by confirm spans as there are commits.
        var committed = await WaitForAsync(() => spans.Of(PipelineTracing.Commit, slot).Count is var count and >= 2
            && spans.Of(PipelineTracing.Confirm, slot).Sum(c => (int)c.GetTagItem("synchro.confirm.commits")!) == count);
        await harness.StopAsync();

        var decodes = spans.Of(PipelineTracing.Decode, slot).OrderBy(a => a.StartTimeUtc).ToList();
        var writes = spans.Of(PipelineTracing.Write, slot);
        var assigns = spans.Of(PipelineTracing.Assign, slot);
        var commits = spans.Of(PipelineTracing.Commit, slot);
        var confirms = spans.Of(PipelineTracing.Confirm, slot);
        Assert.Equal(1002, decodes.Sum(d => (int)d.GetTagItem("synchro.batch.changes")!));
        Assert.InRange(decodes.Count, 4, 5);
        Assert.Equal(decodes.Count, writes.Count);
        Assert.Equal(decodes.Count, assigns.Count);
        Assert.Equal(decodes.Count - 2, commits.Count);

        // The big transaction: 400 + 400 + 200 changes, the first two chunks not ending it.
        var big = decodes.Take(3).ToList();
        Assert.Equal([400, 400, 200], big.Select(d => (int)d.GetTagItem("synchro.batch.changes")!));
        Assert.Equal([false, false, null], big.Select(d => (bool?)d.GetTagItem("synchro.batch.ends_transaction")));
        Assert.Equal([0, 0, 1], big.Select(d => (int)d.GetTagItem("synchro.batch.transactions")!));
        Assert.All(big, d => Assert.NotNull(d.GetTagItem("synchro.batch.first_lsn")));
        Assert.Equal(big[0].GetTagItem("synchro.batch.first_lsn"), big[2].GetTagItem("synchro.batch.first_lsn"));

        foreach (var decode in decodes)
        {
            // Decode is the root; the write is its child, the assign the write's; the same tags go along.
            Assert.Equal(default, decode.ParentSpanId);
            var write = Assert.Single(spans.InTrace(PipelineTracing.Write, decode.TraceId));
            Assert.Equal(decode.SpanId, write.ParentSpanId);
            Assert.Equal(decode.GetTagItem("synchro.batch.changes"), write.GetTagItem("synchro.batch.changes"));
            Assert.Equal(decode.GetTagItem("synchro.batch.end_lsn"), write.GetTagItem("synchro.batch.end_lsn"));
            Assert.Equal(ActivityStatusCode.Unset, write.Status);
            var assign = Assert.Single(spans.InTrace(PipelineTracing.Assign, decode.TraceId));
            Assert.Equal(write.SpanId, assign.ParentSpanId);
            Assert.True(decode.StartTimeUtc <= write.StartTimeUtc);
        }
        var bigWrites = big.Select(d => Assert.Single(spans.InTrace(PipelineTracing.Write, d.TraceId))).ToList();
        Assert.Equal([400, 400, 200], bigWrites.Select(w => (int)w.GetTagItem("synchro.changelog.rows")!));

        // The commit is in the trace of the batch that ends the transaction, and counts the whole transaction.
        Assert.Empty(spans.InTrace(PipelineTracing.Commit, big[0].TraceId));
        var bigCommit = Assert.Single(spans.InTrace(PipelineTracing.Commit, big[2].TraceId));
        Assert.Equal(bigWrites[2].SpanId, bigCommit.ParentSpanId);
        Assert.Equal(1000, bigCommit.GetTagItem("synchro.batch.changes"));
        Assert.Equal(1, bigCommit.GetTagItem("synchro.batch.transactions"));
        Assert.Equal(big[2].GetTagItem("synchro.batch.end_lsn"), bigCommit.GetTagItem("synchro.batch.end_lsn"));

        // Every commit is confirmed: by a confirm span under it (the newest it covers) or linked from one.
        Assert.True(committed);
        foreach (var commit in commits)
        {
            Assert.Contains(confirms, c => c.ParentSpanId == commit.SpanId && c.TraceId == commit.TraceId
                || c.Links.Any(l => l.Context.SpanId == commit.SpanId && l.Context.TraceId == commit.TraceId));
        }
        Assert.All(confirms, c => Assert.NotNull(c.GetTagItem("synchro.confirmed_lsn")));
    }

    [Fact]
    public async Task A_replay_is_a_span_with_one_span_per_chunk()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "tracing_replay");
        using var spans = new ActivityRecorder();
        var options = harness.Options();
        // A uuid id (36 bytes) is longer than this: every order becomes a rule failure, to be replayed with the default limit.
        options.MaxRecordIdBytes = 8;
        await harness.StartAsync(options);
        await harness.ExecuteAsync("INSERT INTO orders (id, user_id) SELECT gen_random_uuid(), 'u' || i FROM generate_series(1, 5) i; INSERT INTO categories VALUES (1, 'a')");
        await harness.WaitForChangelogAsync(1);
        await harness.StopAsync();
        var write = Assert.Single(spans.Of(PipelineTracing.Write, harness.Slot), w => (int)w.GetTagItem("synchro.rule_failures")! > 0);
        Assert.Equal(5, write.GetTagItem("synchro.rule_failures"));

        options.MaxRecordIdBytes = new WalPipelineOptions().MaxRecordIdBytes;
        RuleFailureReplayResult result;
        using (var test = ActivityRecorder.TestSource.StartActivity("replay-test"))
        {
            Assert.NotNull(test);
            result = await new RuleFailureReplayer(options) { ChunkSize = 2 }.ReplayAsync();
            Assert.Equal(5, result.Replayed);

            var replay = Assert.Single(spans.InTrace(PipelineTracing.Replay, test.TraceId));
            Assert.Equal(test.SpanId, replay.ParentSpanId);
            Assert.Equal(5, replay.GetTagItem("synchro.replay.replayed"));
            Assert.Equal(5L, replay.GetTagItem("synchro.changelog.rows"));
            var chunks = spans.InTrace(PipelineTracing.ReplayChunk, test.TraceId).OrderBy(c => c.StartTimeUtc).ToList();
            Assert.All(chunks, c => Assert.Equal(replay.SpanId, c.ParentSpanId));
            // Chunks of 2, 2, 1, then the read that finds none.
            Assert.Equal([2, 2, 1, 0], chunks.Select(c => (int)c.GetTagItem("synchro.replay.failures")!));
            Assert.Equal(5, chunks.Sum(c => (int)c.GetTagItem("synchro.replay.replayed")!));
        }
    }

    [Fact]
    public async Task Histograms_carry_bucket_advice_and_every_measurement_the_slot()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "tracing_metrics");
        using var meters = new OwnMeterFactory();
        var advice = new Dictionary<string, object?>();
        var untagged = new List<string>();
        var measured = new HashSet<string>();
        var meterTags = new List<KeyValuePair<string, object?>>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (!ReferenceEquals(instrument.Meter.Scope, meters))
                return;
            lock (advice)
            {
                meterTags = [.. instrument.Meter.Tags ?? []];
                advice[instrument.Name] = instrument switch
                {
                    Histogram<double> h => h.Advice?.HistogramBucketBoundaries,
                    Histogram<int> h => h.Advice?.HistogramBucketBoundaries,
                    _ => null,
                };
            }
            l.EnableMeasurementEvents(instrument);
        };
        void Measured(Instrument instrument, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            var slot = false;
            foreach (var tag in tags)
                slot |= tag.Key == "synchro.slot" && tag.Value as string == harness.Slot;
            lock (advice)
            {
                measured.Add(instrument.Name);
                if (!slot)
                    untagged.Add(instrument.Name);
            }
        }
        listener.SetMeasurementEventCallback<long>((i, _, tags, _) => Measured(i, tags));
        listener.SetMeasurementEventCallback<int>((i, _, tags, _) => Measured(i, tags));
        listener.SetMeasurementEventCallback<double>((i, _, tags, _) => Measured(i, tags));
        listener.Start();

        var options = harness.Options();
        options.MeterFactory = meters;
        options.CompactionInterval = TimeSpan.FromMilliseconds(200);
        await harness.StartAsync(options);
        await harness.ExecuteAsync("INSERT INTO categories VALUES (1, 'a'); UPDATE categories SET name = 'b' WHERE id = 1;");
        // Committed, not counted: compaction (every 200 ms here) may already have removed the insert its update supersedes.
        await harness.WaitUntilCaughtUpAsync();
        Assert.True(await WaitForAsync(() => { lock (advice) return measured.Contains("synchro.pipeline.compaction.runs"); }));
        listener.RecordObservableInstruments();
        await harness.StopAsync();

        Assert.Equal(PipelineMetrics.BatchDurationBuckets, advice["synchro.pipeline.batch.duration"]);
        Assert.Equal(PipelineMetrics.LatencyBuckets, advice["synchro.pipeline.changelog.latency"]);
        Assert.Equal(PipelineMetrics.BatchSizeBuckets, advice["synchro.pipeline.batch.size"]);
        Assert.Equal(CompactionMetrics.DurationBuckets, advice["synchro.pipeline.compaction.duration"]);
        // Seconds-valued advice starts at a millisecond or more, never at OpenTelemetry's default 0, 5, 10... (milliseconds).
        Assert.All(new[] { "synchro.pipeline.batch.duration", "synchro.pipeline.changelog.latency", "synchro.pipeline.compaction.duration" },
            name => Assert.InRange(((IReadOnlyList<double>)advice[name]!)[0], 0.001, 0.01));

        Assert.Contains(new KeyValuePair<string, object?>("synchro.slot", harness.Slot), meterTags);
        Assert.Contains("synchro.pipeline.batch.duration", measured);
        Assert.Contains("synchro.pipeline.changes.committed", measured);
        Assert.Contains("synchro.pipeline.queue.depth", measured);
        Assert.Empty(untagged);
    }

    private static async Task<bool> WaitForAsync(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
                return false;
            await Task.Delay(20);
        }
        return true;
    }

    private sealed class OwnMeterFactory : IMeterFactory
    {
        private readonly List<Meter> _meters = [];

        public Meter Create(MeterOptions options)
        {
            var meter = new Meter(options.Name, options.Version, options.Tags, scope: this);
            lock (_meters)
                _meters.Add(meter);
            return meter;
        }

        public void Dispose()
        {
            foreach (var meter in _meters)
                meter.Dispose();
        }
    }
}
