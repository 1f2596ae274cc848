using Synchro.Pipeline.Tests.Infrastructure;
using Synchro.Pipeline.Tests.Pipeline;

namespace Synchro.Pipeline.Tests.Runtime;

/// <summary>Heartbeats move a slot whose tables are idle past WAL written by other databases of the server.</summary>
[Collection(PostgresCollection.Name)]
[Trait(TestCategories.Name, TestCategories.VersionSensitive)]
public sealed class HeartbeatTests(PostgresServerFixture postgres)
{
    private const string Order = "00000000-0000-0000-0000-0000000000a1";

    [Fact]
    public async Task With_heartbeats_the_slot_and_the_persisted_position_pass_wal_written_by_another_database()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "heartbeat_on");
        var other = await postgres.CreateDatabaseAsync("heartbeat_on_other");
        var options = harness.Options();
        options.HeartbeatInterval = TimeSpan.FromMilliseconds(200);
        await harness.StartAsync(options);
        await harness.ExecuteAsync($"INSERT INTO orders (id, user_id) VALUES ('{Order}', 'alice')");
        await harness.WaitForChangelogAsync(1);

        using var stopNoise = new CancellationTokenSource();
        var noise = OperationsSql.WriteContinuouslyAsync(other, stopNoise.Token);
        try
        {
            await Task.Delay(TimeSpan.FromSeconds(1));
            var after = await OperationsSql.CurrentWalAsync(other);

            await OperationsSql.WaitUntilAsync(async () => await OperationsSql.PersistedAsync(harness.ConnectionString, harness.Slot) >= after,
                "sync_wal_position to pass the other database's WAL", TimeSpan.FromSeconds(20), harness);
            await OperationsSql.WaitUntilAsync(async () => await OperationsSql.SlotConfirmedAsync(harness.ConnectionString, harness.Slot) >= after,
                "the slot's confirmed_flush_lsn to pass the other database's WAL", TimeSpan.FromSeconds(20), harness);
        }
        finally
        {
            await stopNoise.CancelAsync();
            await noise;
        }

        Assert.Equal([$"user:alice orders {Order} 1"], await harness.ChangelogAsync());
    }

    [Fact]
    public async Task Without_heartbeats_the_slot_stays_at_the_last_committed_transaction_while_other_databases_write()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "heartbeat_off");
        var other = await postgres.CreateDatabaseAsync("heartbeat_off_other");
        var options = harness.Options();
        options.HeartbeatInterval = TimeSpan.Zero;
        await harness.StartAsync(options);
        await harness.ExecuteAsync($"INSERT INTO orders (id, user_id) VALUES ('{Order}', 'alice')");
        await harness.WaitForChangelogAsync(1);
        var persisted = await OperationsSql.PersistedAsync(harness.ConnectionString, harness.Slot);
        Assert.NotNull(persisted);
        await OperationsSql.WaitUntilAsync(async () => await OperationsSql.SlotConfirmedAsync(harness.ConnectionString, harness.Slot) == persisted,
            "the slot to be confirmed at the committed transaction", TimeSpan.FromSeconds(20), harness);

        using var stopNoise = new CancellationTokenSource();
        var noise = OperationsSql.WriteContinuouslyAsync(other, stopNoise.Token);
        long after;
        try
        {
            await Task.Delay(TimeSpan.FromSeconds(1));
            after = await OperationsSql.CurrentWalAsync(other);
            // The slot's walsender read past the other database's WAL, and the pipeline told the server its position since.
            await OperationsSql.WaitUntilAsync(async () => await OperationsSql.SentAsync(harness.ConnectionString, harness.Slot) >= after,
                "the slot's walsender to read past the other database's WAL", TimeSpan.FromSeconds(20), harness);
            var read = await Sql.ScalarAsync<DateTime>(harness.ConnectionString, "SELECT clock_timestamp()");
            await OperationsSql.WaitUntilAsync(() => OperationsSql.RepliedSinceAsync(harness.ConnectionString, harness.Slot, read),
                "a status update from the pipeline after that", TimeSpan.FromSeconds(20), harness);
        }
        finally
        {
            await stopNoise.CancelAsync();
            await noise;
        }

        // Documented behaviour: pgoutput sends nothing for WAL of other databases (nor for transactions without published
        // changes), so with nothing to commit the pipeline confirms nothing newer and the slot pins that WAL.
        Assert.True(after > persisted!.Value);
        Assert.Equal(persisted, await OperationsSql.PersistedAsync(harness.ConnectionString, harness.Slot));
        Assert.Equal(persisted, await OperationsSql.SlotConfirmedAsync(harness.ConnectionString, harness.Slot));
        Assert.False(harness.Running.IsCompleted);
        Assert.Equal([$"user:alice orders {Order} 1"], await harness.ChangelogAsync());
    }
}
