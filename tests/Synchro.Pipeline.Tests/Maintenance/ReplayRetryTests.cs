using Npgsql;
using Synchro.Pipeline.Maintenance;
using Synchro.Pipeline.Tests.Infrastructure;
using Synchro.Pipeline.Tests.Pipeline;
using Xunit.Abstractions;

namespace Synchro.Pipeline.Tests.Maintenance;

/// <summary>
/// <c>replay-failures</c> under <see cref="WalPipelineOptions.ReplayChunkTimeout"/>: a chunk that waits past it for the
/// lock on <c>sync_bucket_edges</c> is rolled back and tried again, and replays once the lock is free; one that keeps
/// timing out stops the replay after <see cref="WalPipelineOptions.MaxStatementRetries"/>, naming the timeout, and the
/// failure stays.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class ReplayRetryTests(PostgresServerFixture postgres, ITestOutputHelper output)
{
    private const string O1 = "00000000-0000-0000-0000-000000000001";

    /// <summary>A migrated changelog holding one rule failure of an order that exists: replaying it writes one row.</summary>
    private static async Task<(PipelineHarness Harness, WalPipelineOptions Options)> CreateAsync(PostgresServerFixture postgres, string name)
    {
        var harness = await PipelineHarness.CreateAsync(postgres, name);
        var options = harness.Options();
        await harness.StartAsync(options);
        await harness.StopAsync();
        await harness.ExecuteAsync($$"""
            INSERT INTO orders (id, user_id) VALUES ('{{O1}}', 'alice');
            INSERT INTO sync_rule_failures (table_name, record_id, operation, error_text, payload)
            VALUES ('orders', '{{O1}}', 1, 'an earlier failure', '{"id": "{{O1}}", "user_id": "alice"}');
            """);
        return (harness, options);
    }

    private static async Task<NpgsqlTransaction> LockEdgesAsync(NpgsqlConnection connection)
    {
        await connection.OpenAsync();
        var transaction = await connection.BeginTransactionAsync();
        await using var hold = new NpgsqlCommand("LOCK TABLE sync_bucket_edges IN ACCESS EXCLUSIVE MODE", connection, transaction);
        await hold.ExecuteNonQueryAsync();
        return transaction;
    }

    [Fact]
    public async Task A_chunk_that_waits_past_its_timeout_is_tried_again_and_replays_once_the_lock_is_free()
    {
        var (harness, options) = await CreateAsync(postgres, "replay_retry_free");
        await using var _ = harness;
        options.ReplayChunkTimeout = TimeSpan.FromSeconds(1);
        options.MaxStatementRetries = 10;

        await using var locker = new NpgsqlConnection(harness.ConnectionString);
        var transaction = await LockEdgesAsync(locker);
        var replaying = new RuleFailureReplayer(options).ReplayAsync();
        await Task.Delay(TimeSpan.FromSeconds(2.5));
        Assert.False(replaying.IsCompleted, "the replay did not wait for the lock");
        await transaction.RollbackAsync();
        var result = await replaying.WaitAsync(TimeSpan.FromSeconds(60));

        Assert.Equal((1, 0, 0), (result.Replayed, result.Superseded, result.StillFailing));
        Assert.Equal([$"user:alice orders {O1} 1"], await harness.ChangelogAsync());
        Assert.Equal(0L, await harness.ScalarAsync<long>("SELECT count(*) FROM sync_rule_failures"));
    }

    [Fact]
    public async Task A_chunk_that_keeps_timing_out_stops_the_replay_naming_the_timeout_and_the_failure_stays()
    {
        var (harness, options) = await CreateAsync(postgres, "replay_retry_stuck");
        await using var _ = harness;
        options.ReplayChunkTimeout = TimeSpan.FromSeconds(1);
        options.MaxStatementRetries = 1;

        await using var locker = new NpgsqlConnection(harness.ConnectionString);
        var transaction = await LockEdgesAsync(locker);
        var error = await Assert.ThrowsAsync<WalPipelineException>(() => new RuleFailureReplayer(options).ReplayAsync().WaitAsync(TimeSpan.FromSeconds(60)));
        await transaction.RollbackAsync();

        output.WriteLine(error.Message);
        Assert.StartsWith("replay-failures stopped: A statement replaying a chunk of up to 500 rule failures took longer than ReplayChunkTimeout (1 s) "
            + "and the server cancelled it (statement timeout). A replay chunk first waits for the pipeline's batch in progress", error.Message, StringComparison.Ordinal);
        Assert.Contains("It happened 2 times in a row (MaxStatementRetries is 1).", error.Message, StringComparison.Ordinal);
        Assert.Empty(await harness.ChangelogAsync());
        Assert.Equal(1L, await harness.ScalarAsync<long>("SELECT count(*) FROM sync_rule_failures"));
    }
}
