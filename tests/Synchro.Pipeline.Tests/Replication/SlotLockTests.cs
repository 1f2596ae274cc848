using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Npgsql;
using Synchro.Pipeline.Diagnostics;
using Synchro.Pipeline.Replication;
using Synchro.Pipeline.Tests.Infrastructure;
using Synchro.Pipeline.Tests.Pipeline;

namespace Synchro.Pipeline.Tests.Replication;

/// <summary>One consumer per slot: a start waits, for a bounded time, for a slot another pipeline or walsender holds, naming the holder.</summary>
[Collection(PostgresCollection.Name)]
[Trait(TestCategories.Name, TestCategories.VersionSensitive)]
public sealed class SlotLockTests(PostgresServerFixture postgres)
{
    private const string First = "00000000-0000-0000-0000-0000000000d1";
    private const string Second = "00000000-0000-0000-0000-0000000000d2";
    private const string Third = "00000000-0000-0000-0000-0000000000d3";

    private const string LockHolderSql = """
        SELECT l.pid FROM pg_locks l
        WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2 AND l.classid = @c::oid AND l.objid = hashtext(@s)::oid
        """;

    [Fact]
    public async Task A_second_pipeline_on_the_slot_waits_SlotWaitTimeout_naming_the_holder_then_fails_and_a_new_one_acquires_after_the_first_stops()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "slot_lock");
        var first = harness.Options();
        first.ConnectionString = new NpgsqlConnectionStringBuilder(harness.ConnectionString) { ApplicationName = "first-pipeline" }.ConnectionString;
        await harness.StartAsync(first);
        await harness.ExecuteAsync($"INSERT INTO orders (id, user_id) VALUES ('{First}', 'alice')");
        await harness.WaitForChangelogAsync(1);

        var logs = new RecordingLoggerFactory(LogLevel.Information);
        var secondOptions = harness.Options();
        secondOptions.SlotWaitTimeout = TimeSpan.FromSeconds(2);
        secondOptions.LoggerFactory = logs;
        var started = Stopwatch.GetTimestamp();
        await using (var second = new WalPipeline(secondOptions))
        {
            var error = await Assert.ThrowsAsync<WalPipelineException>(() => second.RunAsync().WaitAsync(TimeSpan.FromSeconds(30)));
            var elapsed = Stopwatch.GetElapsedTime(started);
            Assert.True(elapsed >= TimeSpan.FromSeconds(2) && elapsed < TimeSpan.FromSeconds(15), $"the second pipeline gave up after {elapsed}, not after its 2 s wait");
            Assert.StartsWith($"Replication slot '{harness.Slot}' is already consumed by another pipeline (backend pid ", error.Message, StringComparison.Ordinal);
            Assert.Contains("application_name 'first-pipeline'", error.Message, StringComparison.Ordinal);
            // The time actually waited: 2 s, more on a loaded machine.
            Assert.Matches(@"waited [2-9] s \(SlotWaitTimeout\)", error.Message);
            Assert.Contains("Stop the other pipeline, or give this one its own slot", error.Message, StringComparison.Ordinal);
            Assert.Equal(WalPipelineState.Failed, second.GetStatus().State);
        }
        // The holder was said once, at the start of the wait.
        var waiting = Assert.Single(logs.Entries, e => e.EventId.Id == EventIds.SlotWaiting);
        Assert.Equal(LogLevel.Warning, waiting.Level);
        Assert.Contains($"Replication slot {harness.Slot} is held by the slot lock of another pipeline (backend pid ", waiting.Message, StringComparison.Ordinal);
        Assert.Contains("application_name 'first-pipeline'", waiting.Message, StringComparison.Ordinal);
        Assert.Contains("waiting up to 2 s (SlotWaitTimeout)", waiting.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(logs.Entries, e => e.EventId.Id == EventIds.SlotAcquired);

        // The first one was not disturbed.
        await harness.ExecuteAsync($"INSERT INTO orders (id, user_id) VALUES ('{Second}', 'bob')");
        await harness.WaitForChangelogAsync(2);
        Assert.Equal(0L, harness.Pipeline!.GetStatus().Reconnects);
        await harness.StopAsync();

        await harness.StartAsync(harness.Options());
        await harness.ExecuteAsync($"INSERT INTO orders (id, user_id) VALUES ('{Third}', 'carol')");
        var rows = await harness.WaitForChangelogAsync(3);
        Assert.Equal([$"user:alice orders {First} 1", $"user:bob orders {Second} 1", $"user:carol orders {Third} 1"], rows);
    }

    [Fact]
    public async Task A_start_while_another_pipeline_holds_the_slot_waits_and_takes_it_as_soon_as_that_one_stops()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "slot_lock_wait");
        await harness.StartAsync();
        await harness.ExecuteAsync($"INSERT INTO orders (id, user_id) VALUES ('{First}', 'alice')");
        await harness.WaitForChangelogAsync(1);

        var logs = new RecordingLoggerFactory(LogLevel.Information);
        var nextOptions = harness.Options();
        nextOptions.LoggerFactory = logs;
        await using var next = new WalPipeline(nextOptions);
        using var stopNext = new CancellationTokenSource();
        var nextRun = next.RunAsync(stopNext.Token);
        await OperationsSql.WaitUntilAsync(() => Task.FromResult(logs.Entries.Any(e => e.EventId.Id == EventIds.SlotWaiting)),
            "the next pipeline to wait for the slot", TimeSpan.FromSeconds(30), harness);
        Assert.False(nextRun.IsCompleted);

        var stopped = Stopwatch.GetTimestamp();
        await harness.StopAsync();
        await OperationsSql.WaitUntilAsync(() => Task.FromResult(logs.Entries.Any(e => e.EventId.Id == EventIds.SlotAcquired) || nextRun.IsCompleted),
            "the next pipeline to take the slot", TimeSpan.FromSeconds(30));
        Assert.False(nextRun.IsCompleted, $"the next pipeline ended: {nextRun.Exception}");
        var takenAfter = Stopwatch.GetElapsedTime(stopped);

        // The next pipeline streams what comes after.
        await harness.ExecuteAsync($"INSERT INTO orders (id, user_id) VALUES ('{Second}', 'bob')");
        Assert.Equal([$"user:alice orders {First} 1", $"user:bob orders {Second} 1"], await harness.WaitForChangelogAsync(2));
        await stopNext.CancelAsync();
        await nextRun.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.True(takenAfter < TimeSpan.FromSeconds(10), $"the slot was taken {takenAfter} after the holder stopped");
        Assert.Single(logs.Entries, e => e.EventId.Id == EventIds.SlotWaiting);
        Assert.DoesNotContain(logs.Entries, e => e.Level >= LogLevel.Error);
    }

    [Fact]
    public async Task A_start_waits_for_a_walsender_still_streaming_the_slot_naming_it_and_fails_only_after_SlotWaitTimeout()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "slot_busy_wait");
        await ReplicationSlots.CreateIfMissingAsync(harness.ConnectionString, harness.Slot, twoPhase: false, CancellationToken.None);

        // A consumer that is not a pipeline: the start waits for its walsender, then fails naming it.
        var (consumer, walSenderPid) = await SlotConsumerProcess.StartAsync(postgres.Server, harness.ConnectionString, harness.Slot, PipelineHarness.Publication);
        await using (consumer)
        {
            var logs = new RecordingLoggerFactory(LogLevel.Information);
            var options = harness.Options();
            options.SlotWaitTimeout = TimeSpan.FromSeconds(2);
            options.LoggerFactory = logs;
            await using var pipeline = new WalPipeline(options);
            var error = await Assert.ThrowsAsync<WalPipelineException>(() => pipeline.RunAsync().WaitAsync(TimeSpan.FromSeconds(30)));
            Assert.StartsWith($"Replication slot '{harness.Slot}' is in use by another connection (walsender pid {walSenderPid}, application_name 'pg_recvlogical'", error.Message, StringComparison.Ordinal);
            // The time actually waited: 2 s, more on a loaded machine.
            Assert.Matches(@"waited [2-9] s \(SlotWaitTimeout\)", error.Message);
            Assert.Contains($"SELECT pg_terminate_backend({walSenderPid})", error.Message, StringComparison.Ordinal);
            var announced = Assert.Single(logs.Entries, e => e.EventId.Id == EventIds.SlotWaiting);
            Assert.Contains($"is held by another connection streaming it (walsender pid {walSenderPid}", announced.Message, StringComparison.Ordinal);
        }

        // One that goes away within the wait: the start takes the slot then.
        var (again, _) = await SlotConsumerProcess.StartAsync(postgres.Server, harness.ConnectionString, harness.Slot, PipelineHarness.Publication);
        var waitLogs = new RecordingLoggerFactory(LogLevel.Information);
        var waitOptions = harness.Options();
        waitOptions.LoggerFactory = waitLogs;
        await using var waiting = new WalPipeline(waitOptions);
        using var stop = new CancellationTokenSource();
        Task running;
        await using (again)
        {
            running = waiting.RunAsync(stop.Token);
            await OperationsSql.WaitUntilAsync(() => Task.FromResult(waitLogs.Entries.Any(e => e.EventId.Id == EventIds.SlotWaiting) || running.IsCompleted),
                "the pipeline to wait for the walsender", TimeSpan.FromSeconds(30));
        }
        await OperationsSql.WaitUntilAsync(() => Task.FromResult(waitLogs.Entries.Any(e => e.EventId.Id == EventIds.SlotAcquired) || running.IsCompleted),
            "the pipeline to take the slot", TimeSpan.FromSeconds(30));
        Assert.False(running.IsCompleted, $"the pipeline ended: {running.Exception}");
        await OperationsSql.WaitStreamingAsync(harness.ConnectionString, harness.Slot, running);
        await harness.ExecuteAsync($"INSERT INTO orders (id, user_id) VALUES ('{First}', 'alice')");
        Assert.Equal([$"user:alice orders {First} 1"], await harness.WaitForChangelogAsync(1));
        await stop.CancelAsync();
        await running.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Single(waitLogs.Entries, e => e.EventId.Id == EventIds.SlotWaiting);
    }

    [Fact]
    public async Task A_lost_lock_session_ends_the_run_and_the_lock_is_taken_again_on_reconnect()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "slot_lock_again");
        var options = harness.Options();
        options.SlotHealthInterval = TimeSpan.FromMilliseconds(200);
        await harness.StartAsync(options);
        var holder = await LockHolderAsync(harness);
        Assert.NotNull(holder);

        await harness.ExecuteAsync($"SELECT pg_terminate_backend({holder})");

        await OperationsSql.WaitUntilAsync(async () => await LockHolderAsync(harness) is { } pid && pid != holder,
            "the lock to be taken again by a new session", TimeSpan.FromSeconds(20), harness);
        Assert.True(harness.Pipeline!.GetStatus().Reconnects >= 1);
        await harness.ExecuteAsync($"INSERT INTO orders (id, user_id) VALUES ('{First}', 'alice')");
        Assert.Equal([$"user:alice orders {First} 1"], await harness.WaitForChangelogAsync(1));
    }

    private static async Task<int?> LockHolderAsync(PipelineHarness harness)
        => await Sql.ScalarAsync<object>(harness.ConnectionString, LockHolderSql, ("c", SlotLock.LockClass), ("s", harness.Slot)) as int?;
}
