using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Npgsql;
using Synchro.Pipeline.LocalPostgres;
using Synchro.Pipeline.Replication;
using Synchro.Pipeline.Tests.Cli;
using Synchro.Pipeline.Tests.Infrastructure;
using Synchro.Pipeline.Tests.Pipeline;

namespace Synchro.Pipeline.Tests.Replication;

/// <summary>
/// Slots the server really invalidates, on PostgreSQL 17 and 18 servers of their own: the reason the server names
/// (<c>invalidation_reason</c>) reaches the health watch, the start-up check, <c>status</c> and the metrics, and the
/// pipeline stops with the fix for that reason.
/// </summary>
public sealed class SlotInvalidationTests
{
    private const string First = "00000000-0000-0000-0000-0000000017e1";
    private const string Stalled = "00000000-0000-0000-0000-0000000017e2";

    [Fact]
    public async Task On_17_a_slot_invalidated_for_removed_wal_stops_the_running_pipeline_and_status_names_the_reason()
    {
        // Less than a WAL segment: a slot whose restart position is in an older segment is invalidated at the next checkpoint.
        await using var server = await LocalPostgresServer.StartAsync(new LocalPostgresOptions
        {
            Version = Postgres17ServerFixture.VersionOf17OrNewer,
            Settings = { ["max_slot_wal_keep_size"] = "1MB" },
        });
        var database = await server.CreateDatabaseAsync("invalidated_17");
        using var meters = new OwnMeterFactory();
        await Sql.ExecuteAsync(database, PipelineHarness.Schema + "CREATE TABLE filler (id bigserial PRIMARY KEY, payload text);");
        var options = new WalPipelineOptions
        {
            ConnectionString = database,
            SlotName = "removed_slot",
            PublicationName = PipelineHarness.Publication,
            Tables = PipelineHarness.Registry(),
            BatchLinger = TimeSpan.FromMilliseconds(5),
            StatusInterval = TimeSpan.FromSeconds(1),
            SlotHealthInterval = TimeSpan.FromMilliseconds(200),
            SlotSafeWalSizeWarning = 0,
            MeterFactory = meters,
        };
        await using var pipeline = new WalPipeline(options);
        using var stop = new CancellationTokenSource();
        var running = pipeline.RunAsync(stop.Token);
        try
        {
            await OperationsSql.WaitStreamingAsync(database, options.SlotName, running);
            await Sql.ExecuteAsync(database, $"INSERT INTO orders (id, user_id) VALUES ('{First}', 'alice')");
            await OperationsSql.WaitUntilAsync(async () => await Sql.ScalarAsync<long>(database, "SELECT count(*) FROM sync_changelog") == 1,
                "the first change", TimeSpan.FromSeconds(30));
            // A check that ran before the stream took the slot shows it inactive: the next ones show it in use.
            await OperationsSql.WaitUntilAsync(() => Task.FromResult(pipeline.GetStatus() is { SlotFailover: not null, SlotInactiveSince: null }),
                "a health check of the slot in use", TimeSpan.FromSeconds(10));
            var healthy = pipeline.GetStatus();
            Assert.Equal((null, false, false, null), (healthy.SlotInvalidationReason, healthy.SlotFailover, healthy.SlotSynced, healthy.SlotInactiveSince));
            Assert.Equal(
                [("synchro.pipeline.slot.failover", 0, "synchro.slot.synced=False"), ("synchro.pipeline.slot.invalidated", 0, "")],
                SlotGauges(meters));

            // Stall the writer so nothing is confirmed, then push the slot's restart position out of the kept WAL.
            await using var blocker = new NpgsqlConnection(database);
            await blocker.OpenAsync();
            await using var blocking = await blocker.BeginTransactionAsync();
            await using (var lockTable = new NpgsqlCommand("LOCK TABLE sync_changelog IN ACCESS EXCLUSIVE MODE", blocker, blocking))
                await lockTable.ExecuteNonQueryAsync();
            await Sql.ExecuteAsync(database, $"INSERT INTO orders (id, user_id) VALUES ('{Stalled}', 'bob')");
            for (var i = 0; i < 3; i++)
            {
                await Sql.ExecuteAsync(database, "INSERT INTO filler (payload) SELECT repeat('x', 100) FROM generate_series(1, 100)");
                await Sql.ScalarAsync<object>(database, "SELECT pg_switch_wal()");
            }
            await Sql.ExecuteAsync(database, "CHECKPOINT");

            var error = await Assert.ThrowsAsync<WalPipelineException>(() => running.WaitAsync(TimeSpan.FromSeconds(30)));
            Assert.StartsWith("Replication slot 'removed_slot' was invalidated by the server (", error.Message, StringComparison.Ordinal);
            Assert.Contains("more WAL than max_slot_wal_keep_size allows", error.Message, StringComparison.Ordinal);
            Assert.Contains("SELECT pg_drop_replication_slot('removed_slot')", error.Message, StringComparison.Ordinal);
            Assert.Contains("resync clients", error.Message, StringComparison.Ordinal);
            Assert.Contains("raise max_slot_wal_keep_size", error.Message, StringComparison.Ordinal);
            var failed = pipeline.GetStatus();
            Assert.Equal(WalPipelineState.Failed, failed.State);
            // The watch or the stream may see it first; the watch reads the reason, the stream only where the server's detail is shown.
            if (failed.SlotInvalidationReason is not null)
            {
                Assert.Equal(SlotInvalidation.WalRemoved, failed.SlotInvalidationReason);
                Assert.Contains(("synchro.pipeline.slot.invalidated", 1, "synchro.slot.invalidation_reason=wal_removed"), SlotGauges(meters));
            }
            await blocking.RollbackAsync();
        }
        finally
        {
            await stop.CancelAsync();
            await running.ContinueWith(_ => { }, TaskScheduler.Default);
        }

        Assert.Equal("wal_removed", await Sql.ScalarAsync<string>(database, "SELECT invalidation_reason FROM pg_replication_slots WHERE slot_name = 'removed_slot'"));

        // At start-up: refused with the same reason and fix.
        var refused = await Assert.ThrowsAsync<WalPipelineConfigurationException>(() => WalPipeline.CheckAsync(options));
        var message = Assert.Single(refused.Errors);
        Assert.StartsWith("Replication slot 'removed_slot' was invalidated by the server (invalidation_reason 'wal_removed'): it held back more WAL", message, StringComparison.Ordinal);

        var json = await CliProcess.RunAsync("status", "--json", "--connection", database, "--slot", "removed_slot");
        Assert.True(json.ExitCode == 4, json.ToString());
        using (var document = JsonDocument.Parse(json.Output))
        {
            var slot = document.RootElement.GetProperty("slot");
            Assert.Equal("lost", slot.GetProperty("wal_status").GetString());
            Assert.Equal("wal_removed", slot.GetProperty("invalidation_reason").GetString());
            Assert.False(slot.GetProperty("failover").GetBoolean());
            Assert.False(slot.GetProperty("synced").GetBoolean());
            Assert.Equal(JsonValueKind.String, slot.GetProperty("inactive_since").ValueKind);
            Assert.Equal("critical", document.RootElement.GetProperty("verdict").GetProperty("level").GetString());
        }
        var table = await CliProcess.RunAsync("status", "--connection", database, "--slot", "removed_slot");
        Assert.True(table.ExitCode == 4, table.ToString());
        Assert.Matches(@"^CRITICAL — slot invalidated \(wal_removed\): the changes since \S+ are lost; drop it, let `run` recreate it, then resync clients\r?\n", table.Output);
        Assert.Contains("invalidation_reason  wal_removed — it held back more WAL than max_slot_wal_keep_size allows", table.Output, StringComparison.Ordinal);
        Assert.Contains("failover             off", table.Output, StringComparison.Ordinal);
        Assert.Contains("inactive_since       ", table.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task On_18_a_slot_idle_past_idle_replication_slot_timeout_is_refused_at_start_with_that_fix()
    {
        await using var server = await LocalPostgresServer.StartAsync(new LocalPostgresOptions
        {
            Version = 18,
            Settings = { ["idle_replication_slot_timeout"] = IdleTimeout },
        });
        var database = await server.CreateDatabaseAsync("invalidated_18");
        await Sql.ExecuteAsync(database, PipelineHarness.Schema);
        Assert.True(await ReplicationSlots.CreateIfMissingAsync(database, "idle_slot", twoPhase: false, CancellationToken.None));
        // The timeout is checked at checkpoints, against inactive_since (set when the slot was created, as no one uses it).
        await Task.Delay(IdleWait);
        await Sql.ExecuteAsync(database, "CHECKPOINT");
        Assert.Equal("idle_timeout", await Sql.ScalarAsync<string>(database, "SELECT invalidation_reason FROM pg_replication_slots WHERE slot_name = 'idle_slot'"));

        using var logs = new RecordingLoggerFactory(LogLevel.Critical);
        await using var pipeline = new WalPipeline(new WalPipelineOptions
        {
            ConnectionString = database,
            SlotName = "idle_slot",
            PublicationName = PipelineHarness.Publication,
            Tables = PipelineHarness.Registry(),
            LoggerFactory = logs,
        });
        var error = await Assert.ThrowsAsync<WalPipelineConfigurationException>(() => pipeline.RunAsync(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(60)));

        var message = Assert.Single(error.Errors);
        Assert.StartsWith("Replication slot 'idle_slot' was invalidated by the server (invalidation_reason 'idle_timeout'): no consumer used it for longer than idle_replication_slot_timeout", message, StringComparison.Ordinal);
        Assert.Contains("SELECT pg_drop_replication_slot('idle_slot')", message, StringComparison.Ordinal);
        Assert.Contains("raise idle_replication_slot_timeout (0 turns it off)", message, StringComparison.Ordinal);

        var status = await CliProcess.RunAsync("status", "--connection", database, "--slot", "idle_slot");
        Assert.True(status.ExitCode == 4, status.ToString());
        Assert.Contains("invalidation_reason  idle_timeout — unused longer than idle_replication_slot_timeout", status.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task On_17_a_standby_slot_whose_catalog_rows_the_primary_vacuumed_is_rows_removed_and_status_says_to_turn_on_hot_standby_feedback()
    {
        await using var primary = await LocalPostgresServer.StartAsync(new LocalPostgresOptions { Version = Postgres17ServerFixture.VersionOf17OrNewer });
        var database = await primary.CreateDatabaseAsync("rows_removed");
        await using var standby = await primary.StartStreamingStandbyAsync("standby_feedback_off", new Dictionary<string, string> { ["hot_standby_feedback"] = "off" });
        var onStandby = standby.ConnectionString("rows_removed");

        // A slot on a standby waits for a running-xacts record from the primary.
        var creating = Sql.ExecuteAsync(onStandby, "SELECT pg_create_logical_replication_slot('standby_slot', 'pgoutput')");
        while (!creating.IsCompleted)
        {
            await Sql.ExecuteAsync(database, "SELECT pg_log_standby_snapshot()");
            await Task.WhenAny(creating, Task.Delay(100));
        }
        await creating;

        // Without feedback the primary's vacuum removes catalog rows the standby's slot still needs.
        // Two transactions: rows a transaction inserts and deletes itself conflict with no snapshot.
        await Sql.ExecuteAsync(database, "CREATE TABLE churn (id int)");
        await Sql.ExecuteAsync(database, "DROP TABLE churn");
        await Sql.ExecuteAsync(database, "VACUUM pg_class");
        await OperationsSql.WaitUntilAsync(
            async () => await Sql.ScalarAsync<string>(onStandby, "SELECT coalesce(invalidation_reason, '') FROM pg_replication_slots WHERE slot_name = 'standby_slot'") == "rows_removed",
            "the standby's slot invalidated as rows_removed", TimeSpan.FromSeconds(30));

        var json = await CliProcess.RunAsync("status", "--json", "--connection", onStandby, "--slot", "standby_slot");
        Assert.True(json.ExitCode == 4, json.ToString());
        using (var document = JsonDocument.Parse(json.Output))
        {
            Assert.True(document.RootElement.GetProperty("in_recovery").GetBoolean());
            Assert.Equal("rows_removed", document.RootElement.GetProperty("slot").GetProperty("invalidation_reason").GetString());
        }
        var table = await CliProcess.RunAsync("status", "--connection", onStandby, "--slot", "standby_slot");
        Assert.Contains("invalidation_reason  rows_removed — a standby's slot lost catalog rows to the primary's vacuum: set hot_standby_feedback = on", table.Output, StringComparison.Ordinal);
    }

    /// <summary>The slot gauges of this test's own meters, as an exporter would read them now: name, value, tags.</summary>
    private static List<(string, int, string)> SlotGauges(OwnMeterFactory meters)
    {
        var seen = new List<(string, int, string)>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Scope == meters && instrument.Name is "synchro.pipeline.slot.invalidated" or "synchro.pipeline.slot.failover")
                l.EnableMeasurementEvents(instrument);
        };
        listener.SetMeasurementEventCallback<int>((instrument, value, tags, _) =>
            // The slot's name is on every measurement (TracingTests checks it); the gauges' own tags are what this test is about.
            seen.Add((instrument.Name, value, string.Join(",", tags.ToArray().Where(t => t.Key != "synchro.slot").Select(t => $"{t.Key}={t.Value}")))));
        listener.Start();
        listener.RecordObservableInstruments();
        return [.. seen.OrderBy(s => s.Item1, StringComparer.Ordinal)];
    }

    /// <summary>Meters of this test only, so other tests' pipelines on the same meter name are not read.</summary>
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

    private const string IdleTimeout = "1s";

    private static readonly TimeSpan IdleWait = TimeSpan.FromSeconds(2);
}
