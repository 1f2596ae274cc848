using Microsoft.Extensions.Logging;
using Npgsql;
using Synchro.Pipeline.Buckets;
using Synchro.Pipeline.Tests.Infrastructure;

namespace Synchro.Pipeline.Tests.Pipeline;

/// <summary>The reference's behaviour, end to end through a real slot.</summary>
[Collection(PostgresCollection.Name)]
public sealed class WalPipelineTests(PostgresServerFixture postgres)
{
    private const string Order = "00000000-0000-0000-0000-000000000001";

    [Fact]
    public async Task Insert_update_and_soft_delete_land_in_the_owners_bucket()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "owner_bucket");
        await harness.StartAsync();

        await harness.ExecuteAsync($"INSERT INTO orders (id, user_id, total) VALUES ('{Order}', 'alice', 10)");
        await harness.ExecuteAsync($"UPDATE orders SET total = 11 WHERE id = '{Order}'");
        await harness.ExecuteAsync($"UPDATE orders SET deleted_at = now() WHERE id = '{Order}'");
        await harness.ExecuteAsync("INSERT INTO unregistered VALUES (1, 'alice')");

        var rows = await harness.WaitForChangelogAsync(3);
        Assert.Equal([$"user:alice orders {Order} 1", $"user:alice orders {Order} 2", $"user:alice orders {Order} 3"], rows);
        Assert.Equal(0L, await harness.ScalarAsync<long>("SELECT count(*) FROM sync_bucket_edges"));
    }

    [Fact]
    public async Task Child_rows_get_their_parents_owner_and_ownerless_rows_go_global()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "parent_chain");
        await harness.StartAsync();

        await harness.ExecuteAsync($"""
            BEGIN;
            INSERT INTO orders (id, user_id) VALUES ('{Order}', 'bob');
            INSERT INTO order_lines VALUES (7, '{Order}', 3);
            INSERT INTO categories VALUES (5, 'books');
            COMMIT;
            """);

        var rows = await harness.WaitForChangelogAsync(3);
        Assert.Equal([$"user:bob orders {Order} 1", "user:bob order_lines 7 1", "global categories 5 1"], rows);
    }

    [Fact]
    public async Task Changing_the_owner_moves_the_record_between_buckets_and_a_hard_delete_leaves_every_bucket()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "owner_change");
        await harness.StartAsync();

        await harness.ExecuteAsync($"INSERT INTO orders (id, user_id) VALUES ('{Order}', 'alice')");
        await harness.ExecuteAsync($"UPDATE orders SET user_id = 'bob' WHERE id = '{Order}'");
        await harness.ExecuteAsync($"DELETE FROM orders WHERE id = '{Order}'");

        var rows = await harness.WaitForChangelogAsync(4);
        Assert.Equal(
        [
            $"user:alice orders {Order} 1",
            $"user:bob orders {Order} 1",
            $"user:alice orders {Order} 3",
            $"user:bob orders {Order} 3",
        ], rows);
    }

    [Fact]
    public async Task Changes_of_one_record_in_one_batch_see_each_other()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "overlay");
        await harness.StartAsync();

        await harness.ExecuteAsync($"""
            BEGIN;
            INSERT INTO orders (id, user_id) VALUES ('{Order}', 'alice');
            UPDATE orders SET user_id = 'bob' WHERE id = '{Order}';
            UPDATE orders SET total = 5 WHERE id = '{Order}';
            COMMIT;
            """);

        var rows = await harness.WaitForChangelogAsync(4);
        Assert.Equal(
        [
            $"user:alice orders {Order} 1",
            $"user:bob orders {Order} 1",
            $"user:alice orders {Order} 3",
            $"user:bob orders {Order} 2",
        ], rows);
        Assert.Equal("user:bob", await harness.ScalarAsync<string>("SELECT string_agg(bucket_id, ',') FROM sync_bucket_edges"));
    }

    [Fact]
    public async Task A_failing_rule_records_the_change_and_the_pipeline_goes_on()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "rule_failure");
        await harness.StartAsync(harness.Options(new FailingAssigner("1")));

        await harness.ExecuteAsync("INSERT INTO categories VALUES (1, 'poison')");
        await harness.ExecuteAsync("INSERT INTO categories VALUES (2, 'fine')");

        var rows = await harness.WaitForChangelogAsync(1);
        Assert.Equal(["global categories 2 1"], rows);
        Assert.Equal("categories 1 1 category 1 is poison {\"id\": 1, \"deleted_at\": null}", await harness.ScalarAsync<string>(
            "SELECT table_name || ' ' || record_id || ' ' || operation || ' ' || error_text || ' ' || payload::text FROM sync_rule_failures"));
    }

    [Fact]
    public async Task The_position_survives_a_restart_and_nothing_is_written_twice()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "restart");
        await harness.StartAsync();
        await harness.ExecuteAsync("INSERT INTO categories VALUES (1, 'a')");
        await harness.WaitForChangelogAsync(1);
        await harness.StopAsync();

        await harness.ExecuteAsync("INSERT INTO categories VALUES (2, 'b')");
        await harness.StartAsync();
        await harness.ExecuteAsync("INSERT INTO categories VALUES (3, 'c')");

        var rows = await harness.WaitForChangelogAsync(3);
        await harness.WaitUntilCaughtUpAsync();
        Assert.Equal(["global categories 1 1", "global categories 2 1", "global categories 3 1"], await harness.ChangelogAsync());
        Assert.Equal(1L, await harness.ScalarAsync<long>("SELECT count(*) FROM sync_wal_position"));
    }

    [Fact]
    public async Task A_transaction_larger_than_the_batch_limit_is_written_once_and_whole()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "large_txn");
        await harness.StartAsync(harness.Options(maxBatchRows: 100));

        await harness.ExecuteAsync("INSERT INTO categories SELECT g, 'c' || g FROM generate_series(1, 1050) g");

        var rows = await harness.WaitForChangelogAsync(1050);
        await harness.WaitUntilCaughtUpAsync();
        Assert.Equal(1050, (await harness.ChangelogAsync()).Count);
        Assert.Equal(Enumerable.Range(1, 1050).Select(i => $"global categories {i} 1"), rows);
    }

    [Fact]
    public async Task Dropping_the_slot_under_a_running_pipeline_is_a_clear_fatal_error()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "dropped_slot");
        var logs = new RecordingLoggerFactory(LogLevel.Trace);
        var options = harness.Options();
        // The server's password, which the connection string carries.
        var password = new NpgsqlConnectionStringBuilder(options.ConnectionString).Password!;
        Assert.NotEmpty(password);
        options.LoggerFactory = logs;
        options.SlowBatchThreshold = TimeSpan.FromTicks(1);
        await harness.StartAsync(options);
        await harness.ExecuteAsync("INSERT INTO categories VALUES (1, 'a')");
        await harness.WaitForChangelogAsync(1);

        await harness.ExecuteAsync($"SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = '{harness.Slot}'");
        await WaitUntilAsync(async () =>
        {
            try
            {
                await harness.ExecuteAsync($"SELECT pg_drop_replication_slot('{harness.Slot}')");
                return true;
            }
            catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.ObjectInUse)
            {
                await harness.ExecuteAsync($"SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = '{harness.Slot}'");
                return false;
            }
        });

        var error = await Assert.ThrowsAsync<WalPipelineException>(() => harness.Running.WaitAsync(TimeSpan.FromSeconds(15)));
        Assert.Contains($"Replication slot '{harness.Slot}' no longer exists", error.Message, StringComparison.Ordinal);
        var status = harness.Pipeline!.GetStatus();
        Assert.Equal(WalPipelineState.Failed, status.State);
        Assert.Same(error, status.Failure);
        Assert.True(status.Reconnects >= 1, "terminating the walsender is a lost connection first");

        // Structured events under per-stage categories, and never the password.
        var entries = logs.Entries.ToList();
        Assert.Contains(entries, e => e is { Category: WalPipeline.LogCategory, EventId.Id: 1000 });
        Assert.Contains(entries, e => e is { Category: WalPipeline.LogCategory, EventId.Id: 1004, Level: LogLevel.Warning });
        Assert.Contains(entries, e => e is { Category: WalPipeline.LogCategory, EventId.Id: 1005, Level: LogLevel.Critical } && e.Message.Contains("no longer exists", StringComparison.Ordinal));
        Assert.Contains(entries, e => e is { Category: WalPipeline.LogCategory + ".Writer", EventId.Id: 3002, Level: LogLevel.Warning });
        Assert.Contains(entries, e => e is { Category: WalPipeline.LogCategory + ".Committer", EventId.Id: 4001 });
        Assert.DoesNotContain(entries, e => e.Message.Contains(password, StringComparison.Ordinal) || (e.Exception?.ToString().Contains(password, StringComparison.Ordinal) ?? false));

        await harness.StartAsync();
        await harness.ExecuteAsync("INSERT INTO categories VALUES (2, 'b')");
        await harness.WaitForChangelogAsync(2);
    }

    [Fact]
    public async Task An_idle_slot_is_confirmed_past_the_pipelines_own_writes()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "idle_slot");
        await harness.StartAsync();
        await harness.ExecuteAsync("INSERT INTO categories VALUES (1, 'a')");
        await harness.WaitForChangelogAsync(1);

        // WAL after the last published change: the changelog's own commit and a table outside the publication.
        await harness.ExecuteAsync("CREATE TABLE private_notes (id int); INSERT INTO private_notes SELECT generate_series(1, 100)");
        var end = await harness.ScalarAsync<NpgsqlTypes.NpgsqlLogSequenceNumber>("SELECT pg_current_wal_lsn()");

        await WaitUntilAsync(async () => await harness.ScalarAsync<bool>(
            $"SELECT confirmed_flush_lsn >= '{end}'::pg_lsn FROM pg_replication_slots WHERE slot_name = '{harness.Slot}'"));
        Assert.Equal(["global categories 1 1"], await harness.ChangelogAsync());
    }

    private static async Task WaitUntilAsync(Func<Task<bool>> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(15);
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException("Condition not met in 15 s.");
            await Task.Delay(50);
        }
    }

    /// <summary>Fails the rule for one record id, then lets the default rules decide the rest.</summary>
    private sealed class FailingAssigner(string poisonId) : IBucketAssigner
    {
        private readonly DefaultBucketAssigner _default = new();

        public Task AssignAsync(BucketAssignmentBatch batch, CancellationToken cancellationToken)
        {
            foreach (var change in batch.Changes.Where(c => c.RecordId == poisonId))
                change.Fail($"category {poisonId} is poison");
            return _default.AssignAsync(batch, cancellationToken);
        }
    }
}
