using System.Diagnostics;
using Npgsql;
using Synchro.Pipeline.Replication;
using Synchro.Pipeline.Tests.Infrastructure;
using Synchro.Pipeline.Tests.Pipeline;

namespace Synchro.Pipeline.Tests.Replication;

/// <summary>One consumer per slot: a second pipeline on a slot fails fast, naming the holder.</summary>
[Collection(PostgresCollection.Name)]
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
    public async Task A_second_pipeline_on_the_slot_fails_fast_naming_the_holder_and_a_new_one_acquires_after_the_first_stops()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "slot_lock");
        var first = harness.Options();
        first.ConnectionString = new NpgsqlConnectionStringBuilder(harness.ConnectionString) { ApplicationName = "first-pipeline" }.ConnectionString;
        await harness.StartAsync(first);
        await harness.ExecuteAsync($"INSERT INTO orders (id, user_id) VALUES ('{First}', 'alice')");
        await harness.WaitForChangelogAsync(1);

        var started = Stopwatch.GetTimestamp();
        await using (var second = new WalPipeline(harness.Options()))
        {
            var error = await Assert.ThrowsAsync<WalPipelineException>(() => second.RunAsync().WaitAsync(TimeSpan.FromSeconds(30)));
            Assert.True(Stopwatch.GetElapsedTime(started) < TimeSpan.FromSeconds(10), "the second pipeline did not fail fast");
            Assert.StartsWith($"Replication slot '{harness.Slot}' is already consumed by another pipeline (backend pid ", error.Message, StringComparison.Ordinal);
            Assert.Contains("application_name 'first-pipeline'", error.Message, StringComparison.Ordinal);
            Assert.Contains("Stop the other pipeline, or give this one its own slot", error.Message, StringComparison.Ordinal);
            Assert.Equal(WalPipelineState.Failed, second.GetStatus().State);
        }

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
