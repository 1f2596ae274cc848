using Microsoft.Extensions.Logging;
using Npgsql;
using Synchro.Pipeline.LocalPostgres;
using Synchro.Pipeline.Tests.Infrastructure;
using Synchro.Pipeline.Tests.Pipeline;

namespace Synchro.Pipeline.Tests.Replication;

/// <summary>
/// The slot watched while running, on a server of its own with max_slot_wal_keep_size = 1MB: less than a WAL segment
/// (16 MB), so a slot whose restart position is in an older segment than the insert position is 'unreserved' at once,
/// and the next checkpoint invalidates it.
/// </summary>
[Trait(TestCategories.Name, TestCategories.VersionSensitive)]
public sealed class SlotHealthTests
{
    private const string First = "00000000-0000-0000-0000-0000000000e1";
    private const string Stalled = "00000000-0000-0000-0000-0000000000e2";

    [Fact]
    public async Task A_stalled_pipeline_warns_when_its_slot_is_unreserved_and_stops_with_what_to_do_when_it_is_lost()
    {
        await using var server = await LocalPostgresServer.StartAsync(new LocalPostgresOptions { Settings = { ["max_slot_wal_keep_size"] = "1MB" } });
        var database = await server.CreateDatabaseAsync("slot_health");
        await Sql.ExecuteAsync(database, PipelineHarness.Schema + "CREATE TABLE filler (id bigserial PRIMARY KEY, payload text);");
        using var logs = new RecordingLoggerFactory(LogLevel.Warning);
        var options = new WalPipelineOptions
        {
            ConnectionString = database,
            SlotName = "health_slot",
            PublicationName = PipelineHarness.Publication,
            Tables = PipelineHarness.Registry(),
            BatchLinger = TimeSpan.FromMilliseconds(5),
            StatusInterval = TimeSpan.FromSeconds(1),
            MaxReconnectDelay = TimeSpan.FromSeconds(1),
            SlotHealthInterval = TimeSpan.FromMilliseconds(200),
            // Only wal_status counts here; the size threshold has its own test.
            SlotSafeWalSizeWarning = 0,
            LoggerFactory = logs,
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
            await OperationsSql.WaitUntilAsync(() => Task.FromResult(pipeline.GetStatus().SlotWalStatus is not null), "a health check", TimeSpan.FromSeconds(10));
            Assert.Equal("reserved", pipeline.GetStatus().SlotWalStatus);

            // Stall the writer: its next COPY into sync_changelog waits for this lock, so nothing is confirmed.
            await using var blocker = new NpgsqlConnection(database);
            await blocker.OpenAsync();
            await using var blocking = await blocker.BeginTransactionAsync();
            await using (var lockTable = new NpgsqlCommand("LOCK TABLE sync_changelog IN ACCESS EXCLUSIVE MODE", blocker, blocking))
                await lockTable.ExecuteNonQueryAsync();
            await Sql.ExecuteAsync(database, $"INSERT INTO orders (id, user_id) VALUES ('{Stalled}', 'bob')");

            // WAL of an unpublished table, pushed into new segments.
            for (var i = 0; i < 3; i++)
            {
                await Sql.ExecuteAsync(database, "INSERT INTO filler (payload) SELECT repeat('x', 100) FROM generate_series(1, 100)");
                await Sql.ScalarAsync<object>(database, "SELECT pg_switch_wal()");
            }

            await OperationsSql.WaitUntilAsync(() => Task.FromResult(logs.Entries.Any(e => e.EventId.Id == 1010)), "the warning", TimeSpan.FromSeconds(20));
            var warning = logs.Entries.Single(e => e.EventId.Id == 1010);
            Assert.Equal(LogLevel.Warning, warning.Level);
            Assert.StartsWith("Replication slot health_slot is close to being invalidated (wal_status 'unreserved')", warning.Message, StringComparison.Ordinal);
            Assert.Contains("raise max_slot_wal_keep_size", warning.Message, StringComparison.Ordinal);
            Assert.Equal("unreserved", pipeline.GetStatus().SlotWalStatus);
            Assert.False(running.IsCompleted);

            await Sql.ExecuteAsync(database, "CHECKPOINT");

            var error = await Assert.ThrowsAsync<WalPipelineException>(() => running.WaitAsync(TimeSpan.FromSeconds(30)));
            Assert.StartsWith("Replication slot 'health_slot' was invalidated by the server (", error.Message, StringComparison.Ordinal);
            Assert.Contains("the changes since the last committed position are lost", error.Message, StringComparison.Ordinal);
            Assert.Contains("SELECT pg_drop_replication_slot('health_slot')", error.Message, StringComparison.Ordinal);
            Assert.Contains("resync clients", error.Message, StringComparison.Ordinal);
            Assert.Contains("raise max_slot_wal_keep_size", error.Message, StringComparison.Ordinal);
            Assert.Equal(WalPipelineState.Failed, pipeline.GetStatus().State);
            await blocking.RollbackAsync();
        }
        finally
        {
            await stop.CancelAsync();
            await running.ContinueWith(_ => { }, TaskScheduler.Default);
        }

        // Nothing of the stalled transaction was written.
        Assert.Equal([$"user:alice orders {First} 1"], await PipelineHarness.ChangelogAsync(database));
    }

    [Fact]
    public async Task A_safe_wal_size_below_the_threshold_is_a_warning_and_a_status_field()
    {
        await using var server = await LocalPostgresServer.StartAsync(new LocalPostgresOptions { Settings = { ["max_slot_wal_keep_size"] = "64MB" } });
        var database = await server.CreateDatabaseAsync("slot_safe_size");
        await Sql.ExecuteAsync(database, PipelineHarness.Schema);
        using var logs = new RecordingLoggerFactory(LogLevel.Warning);
        var options = new WalPipelineOptions
        {
            ConnectionString = database,
            SlotName = "safe_size_slot",
            PublicationName = PipelineHarness.Publication,
            Tables = PipelineHarness.Registry(),
            SlotHealthInterval = TimeSpan.FromMilliseconds(200),
            // Above what 64MB can ever leave.
            SlotSafeWalSizeWarning = 1L << 30,
            LoggerFactory = logs,
        };
        await using var pipeline = new WalPipeline(options);
        using var stop = new CancellationTokenSource();
        var running = pipeline.RunAsync(stop.Token);

        await OperationsSql.WaitUntilAsync(() => Task.FromResult(logs.Entries.Any(e => e.EventId.Id == 1010)), "the warning", TimeSpan.FromSeconds(30));
        var status = pipeline.GetStatus();
        await stop.CancelAsync();
        await running;

        var warning = Assert.Single(logs.Entries, e => e.EventId.Id == 1010);
        Assert.Matches("^Replication slot safe_size_slot is close to being invalidated \\(safe_wal_size [0-9]+ bytes, below 1073741824\\)", warning.Message);
        Assert.Equal("reserved", status.SlotWalStatus);
        Assert.InRange(status.SlotSafeWalSize!.Value, 1, 1L << 30);
    }
}
