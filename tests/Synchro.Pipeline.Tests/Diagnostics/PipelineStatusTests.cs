using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using Synchro.Pipeline.Tests.Infrastructure;
using Synchro.Pipeline.Tests.Pipeline;

namespace Synchro.Pipeline.Tests.Diagnostics;

/// <summary><see cref="WalPipeline.GetStatus"/> and the <c>Synchro.Pipeline</c> meter, observed on a real slot.</summary>
[Collection(PostgresCollection.Name)]
[Trait(TestCategories.Name, TestCategories.VersionSensitive)]
public sealed class PipelineStatusTests(PostgresServerFixture postgres)
{
    [Fact]
    public async Task Status_and_instruments_follow_the_committed_changes()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "status_metrics");
        using var meters = new OwnMeterFactory();
        using var listener = new MeterRecorder(meters);
        var options = harness.Options();
        options.MeterFactory = meters;
        await harness.StartAsync(options);
        var pipeline = harness.Pipeline!;
        Assert.Equal(WalPipelineState.Running, pipeline.GetStatus().State);

        await harness.ExecuteAsync("""
            BEGIN;
            INSERT INTO orders (id, user_id) VALUES ('00000000-0000-0000-0000-000000000001', 'alice');
            INSERT INTO orders (id, user_id) VALUES ('00000000-0000-0000-0000-000000000002', 'bob');
            INSERT INTO orders (id, user_id) VALUES ('00000000-0000-0000-0000-000000000003', 'bob');
            COMMIT;
            """);
        await harness.ExecuteAsync("UPDATE orders SET total = 5 WHERE user_id = 'bob'");
        await harness.ExecuteAsync("INSERT INTO unregistered VALUES (1, 'alice')");
        await harness.ExecuteAsync("INSERT INTO categories VALUES (1, 'books')");
        await harness.WaitForChangelogAsync(6);

        var status = await WaitAsync(pipeline, s => s.ChangesCommitted == 6 && s.Lag == TimeSpan.Zero);
        Assert.Equal(WalPipelineState.Running, status.State);
        Assert.Null(status.Failure);
        Assert.Equal(6, status.ChangesDecoded);
        Assert.Equal(6, status.ChangelogRows);
        Assert.Equal(4, status.Transactions);
        Assert.InRange(status.Batches, 1, 4);
        Assert.Equal(0, status.RuleFailures);
        Assert.True(status.BytesReceived > 0);
        Assert.InRange(status.BufferedBytes, 0, status.BytesReceived);
        Assert.True(status.CommittedLsn.IsValid);
        Assert.True(status.ServerWalEnd >= status.CommittedLsn);
        // Caught up: what is left is WAL the slot does not publish (the changelog's own writes).
        Assert.InRange(status.LagBytes, 0, 1024 * 1024);
        Assert.NotNull(status.LastBatchAt);

        listener.RecordObservableInstruments();
        Assert.True(listener.Last("synchro.pipeline.wal.received") > 0);
        Assert.Equal(6, listener.Last("synchro.pipeline.changes.decoded"));
        Assert.Equal(6, listener.Last("synchro.pipeline.changes.committed"));
        Assert.Equal(4, listener.Last("synchro.pipeline.transactions"));
        Assert.Equal(status.Batches, listener.Last("synchro.pipeline.batches"));
        Assert.Equal(6, listener.Last("synchro.pipeline.changelog.rows"));
        Assert.Equal(0, listener.Last("synchro.pipeline.rule_failures"));
        Assert.Equal(0, listener.Last("synchro.pipeline.reconnects"));
        Assert.InRange(listener.Last("synchro.pipeline.replication.lag"), 0, 1024 * 1024);
        Assert.Equal(0, listener.Last("synchro.pipeline.replication.lag_time"));
        Assert.InRange(listener.Last("synchro.pipeline.wal.buffered"), 0, status.BytesReceived);
        Assert.Equal(["batches", "receipts"], listener.Tags("synchro.pipeline.queue.depth").Order());

        Assert.Equal(6, listener.All("synchro.pipeline.batch.size").Sum());
        Assert.Equal(status.Batches, listener.All("synchro.pipeline.batch.duration").Count);
        var latencies = listener.All("synchro.pipeline.changelog.latency");
        Assert.Equal(4, latencies.Count);
        Assert.All(latencies, l => Assert.InRange(l, 0, 30));

        await harness.ExecuteAsync("INSERT INTO categories VALUES (2, 'films')");
        await harness.WaitForChangelogAsync(7);
        await harness.StopAsync();
        status = pipeline.GetStatus();
        Assert.Equal(WalPipelineState.Stopped, status.State);
        // The last committed position is confirmed to the server, and it is the persisted one.
        Assert.Equal(status.CommittedLsn.ToString(), await harness.ScalarAsync<string>($"SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = '{harness.Slot}'"));
        Assert.Equal((long)status.CommittedLsn.Value, await harness.ScalarAsync<long>($"SELECT confirmed_lsn FROM sync_wal_position WHERE slot_name = '{harness.Slot}'"));
    }

    [Fact]
    public async Task A_database_that_is_not_set_up_leaves_the_pipeline_failed_with_the_reason()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "status_failed");
        var options = harness.Options();
        options.PublicationName = "no_such_publication";
        await using var pipeline = new WalPipeline(options);
        Assert.Equal(WalPipelineState.NotStarted, pipeline.GetStatus().State);

        var error = await Assert.ThrowsAsync<WalPipelineConfigurationException>(() => pipeline.RunAsync());

        var status = pipeline.GetStatus();
        Assert.Equal(WalPipelineState.Failed, status.State);
        Assert.Same(error, status.Failure);
        Assert.Contains("no_such_publication", error.Message, StringComparison.Ordinal);
    }

    private static async Task<WalPipelineStatus> WaitAsync(WalPipeline pipeline, Func<WalPipelineStatus, bool> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            var status = pipeline.GetStatus();
            if (condition(status))
                return status;
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"Status never matched: {status.State}, {status.ChangesCommitted} committed, lag {status.Lag}.");
            await Task.Delay(20);
        }
    }

    /// <summary>Meters of this test only, so other tests' pipelines on the same meter name are not counted.</summary>
    private sealed class OwnMeterFactory : IMeterFactory
    {
        private readonly ConcurrentBag<Meter> _meters = [];

        public Meter Create(MeterOptions options)
        {
            var meter = new Meter(options.Name, options.Version, options.Tags, scope: this);
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
