using System.Diagnostics.Metrics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Npgsql;
using Npgsql.Replication;
using Npgsql.Replication.PgOutput;
using Synchro.Pipeline.Buckets;
using Synchro.Pipeline.Hosting;
using Synchro.Pipeline.Tests.Diagnostics;
using Synchro.Pipeline.Tests.Infrastructure;
using Synchro.Pipeline.Tests.Pipeline;

namespace Synchro.Pipeline.Tests.Hosting;

/// <summary><c>AddSynchroPipeline</c> in a real generic host against a real slot.</summary>
[Collection(PostgresCollection.Name)]
public sealed class HostedPipelineTests(PostgresServerFixture postgres)
{
    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(30);

    // Every instrument of the Synchro.Pipeline meter.
    private static readonly string[] s_instruments =
    [
        "synchro.pipeline.wal.received", "synchro.pipeline.changes.decoded", "synchro.pipeline.changes.committed",
        "synchro.pipeline.transactions", "synchro.pipeline.batches", "synchro.pipeline.changelog.rows",
        "synchro.pipeline.rule_failures", "synchro.pipeline.truncates", "synchro.pipeline.reconnects", "synchro.pipeline.batch.size",
        "synchro.pipeline.batch.duration", "synchro.pipeline.changelog.latency", "synchro.pipeline.replication.lag",
        "synchro.pipeline.replication.lag_time", "synchro.pipeline.queue.depth", "synchro.pipeline.wal.buffered",
        "synchro.pipeline.slot.safe_wal_size", "synchro.pipeline.slot.invalidated", "synchro.pipeline.slot.failover",
        "synchro.pipeline.instance.active",
    ];

    [Fact]
    public async Task A_hosted_pipeline_streams_measures_through_the_containers_meters_and_reports_its_health()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "hosted");
        var logs = new RecordingLoggerFactory(LogLevel.Information);
        var gate = new GatedAssigner();
        var builder = HostBuilder(harness, logs, options => options.BucketAssigner = gate);
        builder.Services.Configure<WalPipelineHealthCheckOptions>(o => o.MaxLag = TimeSpan.FromMilliseconds(300));
        using var host = builder.Build();
        var meters = host.Services.GetRequiredService<IMeterFactory>();
        using var recorder = new MeterRecorder(meters);

        // Resolved, not started.
        var health = await CheckAsync(host);
        Assert.Equal(HealthStatus.Degraded, health.Status);
        Assert.Equal("NotStarted", health.Data["state"]);

        await host.StartAsync();
        await WaitForHealthAsync(host, HealthStatus.Healthy);

        // The writer is held: the oldest waiting transaction ages past MaxLag.
        await harness.ExecuteAsync("""
            BEGIN;
            INSERT INTO orders (id, user_id) VALUES ('00000000-0000-0000-0000-000000000001', 'alice');
            INSERT INTO orders (id, user_id) VALUES ('00000000-0000-0000-0000-000000000002', 'bob');
            COMMIT;
            """);
        await harness.ExecuteAsync("INSERT INTO categories VALUES (1, 'books')");
        var lagging = await WaitForHealthAsync(host, HealthStatus.Unhealthy);
        Assert.StartsWith("The changelog lags", lagging.Description, StringComparison.Ordinal);
        Assert.Equal("Running", lagging.Data["state"]);
        Assert.Empty(await harness.ChangelogAsync());

        gate.Open();
        var rows = await harness.WaitForChangelogAsync(3);
        Assert.Equal(["user:alice orders 00000000-0000-0000-0000-000000000001 1", "user:bob orders 00000000-0000-0000-0000-000000000002 1", "global categories 1 1"], rows);
        var healthy = await WaitForHealthAsync(host, HealthStatus.Healthy);
        Assert.Equal(3L, healthy.Data["changes_committed"]);
        Assert.Equal(3L, healthy.Data["changelog_rows"]);

        // Every instrument came from the container's factory (the recorder listens to no other meter).
        recorder.RecordObservableInstruments();
        Assert.Equal(s_instruments.Select(i => "Synchro.Pipeline/" + i).Order(), recorder.Published.Order());
        Assert.Equal(3, recorder.Last("synchro.pipeline.changes.committed"));
        Assert.Equal(3, recorder.Last("synchro.pipeline.changelog.rows"));
        Assert.Equal(2, recorder.Last("synchro.pipeline.transactions"));
        Assert.True(recorder.Last("synchro.pipeline.wal.received") > 0);
        Assert.Equal(3, recorder.All("synchro.pipeline.batch.size").Sum());
        Assert.Equal(2, recorder.All("synchro.pipeline.changelog.latency").Count);
        Assert.Equal(0, recorder.Last("synchro.pipeline.replication.lag_time"));
        Assert.Equal(1, recorder.Last("synchro.pipeline.instance.active"));

        // The pipeline logged through the host's logging.
        Assert.Contains(logs.Entries, e => e is { Category: WalPipeline.LogCategory, EventId.Id: 1000 });

        await host.StopAsync();
        var pipeline = host.Services.GetRequiredService<WalPipeline>();
        Assert.Equal(WalPipelineState.Stopped, pipeline.GetStatus().State);
        Assert.Equal(HealthStatus.Unhealthy, (await CheckAsync(host)).Status);
        // Errors other than the health service's report of the lag above.
        Assert.DoesNotContain(logs.Entries, e => e.Level >= LogLevel.Error && !e.Category.StartsWith("Microsoft.Extensions.Diagnostics.HealthChecks", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_lost_connection_is_degraded_until_the_pipeline_is_back()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "hosted_reconnect");
        using var host = HostBuilder(harness, new RecordingLoggerFactory()).Build();
        await host.StartAsync();
        await WaitForHealthAsync(host, HealthStatus.Healthy);

        await using (await SlotHolder.TakeAsync(harness))
        {
            // The pipeline lost its walsender, then keeps retrying against a slot in use elsewhere.
            var health = await WaitForHealthAsync(host, HealthStatus.Degraded, h => h.Exception is PostgresException { SqlState: PostgresErrorCodes.ObjectInUse });
            Assert.Equal("Reconnecting", health.Data["state"]);
            Assert.StartsWith("The pipeline is reconnecting after a lost connection or a retried failure (", health.Description, StringComparison.Ordinal);
            Assert.True((int)health.Data["retry_attempts"] >= 1);
        }

        var back = await WaitForHealthAsync(host, HealthStatus.Healthy);
        Assert.True((long)back.Data["reconnects"] >= 1);
        await harness.ExecuteAsync("INSERT INTO categories VALUES (1, 'a')");
        Assert.Equal(["global categories 1 1"], await harness.WaitForChangelogAsync(1));
        await host.StopAsync();
    }

    [Fact]
    public async Task A_dropped_slot_makes_the_check_unhealthy_and_stops_the_host()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "hosted_fatal");
        var logs = new RecordingLoggerFactory();
        using var host = HostBuilder(harness, logs).Build();
        await host.StartAsync();
        await WaitForHealthAsync(host, HealthStatus.Healthy);
        await harness.ExecuteAsync("INSERT INTO categories VALUES (1, 'a')");
        await harness.WaitForChangelogAsync(1);

        await DropSlotAsync(harness);

        // The host stops by itself (WaitForShutdownAsync stops it without disposing its container).
        await host.WaitForShutdownAsync().WaitAsync(s_timeout);
        var health = await CheckAsync(host);
        Assert.Equal(HealthStatus.Unhealthy, health.Status);
        Assert.Equal("Failed", health.Data["state"]);
        var error = Assert.IsType<WalPipelineException>(health.Exception);
        Assert.Contains($"Replication slot '{harness.Slot}' no longer exists", health.Description, StringComparison.Ordinal);
        // The host logged the failed service with the pipeline's exception before it stopped.
        Assert.Contains(logs.Entries, e => e.Level == LogLevel.Error && ReferenceEquals(e.Exception, error));
        Assert.Contains(logs.Entries, e => e is { Category: WalPipeline.LogCategory, EventId.Id: 1005, Level: LogLevel.Critical });
    }

    [Fact]
    public async Task A_database_that_is_not_set_up_makes_the_check_unhealthy_and_stops_the_host()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "hosted_unset");
        var logs = new RecordingLoggerFactory();
        using var host = HostBuilder(harness, logs, options => options.PublicationName = "no_such_publication").Build();

        await host.StartAsync();
        await host.WaitForShutdownAsync().WaitAsync(s_timeout);

        var health = await CheckAsync(host);
        Assert.Equal(HealthStatus.Unhealthy, health.Status);
        var error = Assert.IsType<WalPipelineConfigurationException>(health.Exception);
        Assert.Contains("no_such_publication", health.Description, StringComparison.Ordinal);
        Assert.Contains(logs.Entries, e => e.Level == LogLevel.Error && ReferenceEquals(e.Exception, error));
    }

    [Fact]
    public async Task The_readme_sample_streams_and_exits_with_1_when_its_pipeline_fails()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "readme_sample");
        var sample = HostingSample.RunAsync(["--ConnectionStrings:Source=" + harness.ConnectionString, "--Synchro:SlotName=" + harness.Slot, "--Logging:LogLevel:Default=Warning"]);
        await WaitUntilAsync(async () => sample.IsCompleted || await harness.ScalarAsync<bool>(
            $"SELECT EXISTS (SELECT FROM pg_replication_slots WHERE slot_name = '{harness.Slot}' AND active)"));
        if (sample.IsCompleted)
            Assert.Fail($"The sample exited early with {await sample}.");
        await harness.ExecuteAsync("INSERT INTO orders (id, user_id) VALUES ('00000000-0000-0000-0000-000000000001', 'alice')");
        Assert.Equal(["user:alice orders 00000000-0000-0000-0000-000000000001 1"], await harness.WaitForChangelogAsync(1));

        await DropSlotAsync(harness);

        Assert.Equal(1, await sample.WaitAsync(s_timeout));
    }

    internal static HostApplicationBuilder HostBuilder(PipelineHarness harness, RecordingLoggerFactory logs, Action<WalPipelineOptions>? configure = null)
    {
        var builder = Host.CreateApplicationBuilder();
        builder.Logging.ClearProviders();
        builder.Logging.AddProvider(new RecordingProvider(logs));
        var test = harness.Options();
        builder.Services.AddSynchroPipeline(options =>
        {
            options.ConnectionString = test.ConnectionString;
            options.SlotName = test.SlotName;
            options.PublicationName = test.PublicationName;
            options.Tables = test.Tables;
            options.BatchLinger = test.BatchLinger;
            options.StatusInterval = test.StatusInterval;
            options.MaxReconnectDelay = test.MaxReconnectDelay;
            configure?.Invoke(options);
        });
        return builder;
    }

    private static async Task<HealthReportEntry> CheckAsync(IHost host)
    {
        var report = await host.Services.GetRequiredService<HealthCheckService>().CheckHealthAsync(r => r.Tags.Contains(WalPipelineHealthCheckOptions.Tag));
        return Assert.Single(report.Entries, e => e.Key == WalPipelineHealthCheckOptions.CheckName).Value;
    }

    private static async Task<HealthReportEntry> WaitForHealthAsync(IHost host, HealthStatus expected, Func<HealthReportEntry, bool>? also = null)
    {
        var deadline = DateTime.UtcNow + s_timeout;
        while (true)
        {
            var health = await CheckAsync(host);
            if (health.Status == expected && (also?.Invoke(health) ?? true))
                return health;
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"Health is {health.Status} ({health.Description}), expected {expected}.");
            await Task.Delay(20);
        }
    }

    /// <summary>Ends the slot's walsender and drops the slot before the pipeline reconnects to it.</summary>
    private static Task DropSlotAsync(PipelineHarness harness) => WaitUntilAsync(async () =>
    {
        try
        {
            await harness.ExecuteAsync($"SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = '{harness.Slot}'");
            await harness.ExecuteAsync($"SELECT pg_drop_replication_slot('{harness.Slot}')");
            return true;
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.ObjectInUse)
        {
            return false;
        }
    });

    private static async Task WaitUntilAsync(Func<Task<bool>> condition)
    {
        var deadline = DateTime.UtcNow + s_timeout;
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"Condition not met in {s_timeout.TotalSeconds} s.");
            await Task.Delay(20);
        }
    }

    /// <summary>Takes the slot from the pipeline: ends its walsender and streams the slot from another connection until disposed.</summary>
    private sealed class SlotHolder : IAsyncDisposable
    {
        private const string ApplicationName = "synchro-slot-holder";

        private readonly LogicalReplicationConnection _connection;
        private readonly CancellationTokenSource _stop = new();
        private readonly Task _streaming;

        private SlotHolder(LogicalReplicationConnection connection, string slot)
        {
            _connection = connection;
            var stream = connection.StartReplication(new PgOutputReplicationSlot(slot), new PgOutputReplicationOptions(PipelineHarness.Publication, PgOutputProtocolVersion.V1), _stop.Token);
            _streaming = Task.Run(async () =>
            {
                await foreach (var _ in stream)
                {
                }
            });
        }

        public static async Task<SlotHolder> TakeAsync(PipelineHarness harness)
        {
            var deadline = DateTime.UtcNow + s_timeout;
            while (true)
            {
                await harness.ExecuteAsync($"SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = '{harness.Slot}'");
                var connection = new LogicalReplicationConnection(harness.ConnectionString + ";Application Name=" + ApplicationName);
                await connection.Open();
                var holder = new SlotHolder(connection, harness.Slot);
                // The pipeline reconnects within its first backoff (200 ms); whoever gets the slot first keeps it.
                while (!holder._streaming.IsCompleted && DateTime.UtcNow < deadline)
                {
                    if (await harness.ScalarAsync<bool>($"""
                        SELECT EXISTS (SELECT FROM pg_replication_slots s JOIN pg_stat_activity a ON a.pid = s.active_pid
                                       WHERE s.slot_name = '{harness.Slot}' AND a.application_name = '{ApplicationName}')
                        """))
                        return holder;
                    await Task.Delay(20);
                }
                await holder.DisposeAsync();
                if (DateTime.UtcNow > deadline)
                    throw new TimeoutException($"Could not take slot {harness.Slot} from the pipeline.");
            }
        }

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            try
            {
                await _streaming;
            }
            catch (Exception e) when (e is OperationCanceledException or PostgresException or NpgsqlException)
            {
            }
            await _connection.DisposeAsync();
            _stop.Dispose();
        }
    }

    /// <summary>The default rules, held until <see cref="Open"/>.</summary>
    private sealed class GatedAssigner : IBucketAssigner
    {
        private readonly DefaultBucketAssigner _default = new();
        private readonly TaskCompletionSource _open = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public void Open() => _open.TrySetResult();

        public async Task AssignAsync(BucketAssignmentBatch batch, CancellationToken cancellationToken)
        {
            await _open.Task.WaitAsync(cancellationToken);
            await _default.AssignAsync(batch, cancellationToken);
        }
    }

    private sealed class RecordingProvider(RecordingLoggerFactory logs) : ILoggerProvider
    {
        public ILogger CreateLogger(string categoryName) => logs.CreateLogger(categoryName);

        public void Dispose()
        {
        }
    }
}
