using Npgsql;
using Synchro.Pipeline.Tests.Infrastructure;
using Synchro.Pipeline.Tests.Pipeline;
using Xunit.Abstractions;

namespace Synchro.Pipeline.Tests.Changelog;

/// <summary>
/// The writer's statements against a contended changelog: a batch blocked past <see cref="WalPipelineOptions.BatchWriteTimeout"/>
/// and a query cancelled by another session are rolled back and retried from the persisted position, exactly once; a
/// TRUNCATE past <see cref="WalPipelineOptions.TruncateTimeout"/> is retried <see cref="WalPipelineOptions.MaxStatementRetries"/>
/// times, then stops the pipeline with a message that names it, and a restart applies it once.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class StatementConflictTests(PostgresServerFixture postgres, ITestOutputHelper output)
{
    private const int ConflictRetrying = 1021;
    private const string O1 = "00000000-0000-0000-0000-000000000001";
    private const string O2 = "00000000-0000-0000-0000-000000000002";

    /// <summary>A session holding <c>sync_changelog</c> in ACCESS EXCLUSIVE mode until disposed: every write of it waits.</summary>
    private sealed class ChangelogLock : IAsyncDisposable
    {
        private readonly NpgsqlConnection _connection;
        private readonly NpgsqlTransaction _transaction;

        private ChangelogLock(NpgsqlConnection connection, NpgsqlTransaction transaction) => (_connection, _transaction) = (connection, transaction);

        public static async Task<ChangelogLock> TakeAsync(string connectionString)
        {
            var connection = new NpgsqlConnection(connectionString);
            await connection.OpenAsync();
            var transaction = await connection.BeginTransactionAsync();
            await using (var hold = new NpgsqlCommand("LOCK TABLE sync_changelog IN ACCESS EXCLUSIVE MODE", connection, transaction))
                await hold.ExecuteNonQueryAsync();
            return new ChangelogLock(connection, transaction);
        }

        public async ValueTask DisposeAsync()
        {
            await _transaction.RollbackAsync();
            await _connection.DisposeAsync();
        }
    }

    private static async Task WaitForRetriesAsync(PipelineHarness harness, RecordingLoggerFactory logs, int count, string containing)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (logs.Entries.Count(e => e.EventId.Id == ConflictRetrying && e.Message.Contains(containing, StringComparison.Ordinal)) < count)
        {
            if (harness.Running.IsCompleted)
                await harness.Running;
            Assert.True(DateTime.UtcNow < deadline, $"no {count} retries of '{containing}' in 60 s: {string.Join(" | ", logs.Entries.Select(e => e.Message))}");
            await Task.Delay(50);
        }
    }

    [Fact]
    public async Task A_batch_blocked_past_its_timeout_is_rolled_back_retried_and_written_exactly_once()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "conflict_batch_timeout");
        var logs = new RecordingLoggerFactory();
        var options = harness.Options();
        options.BatchWriteTimeout = TimeSpan.FromSeconds(1);
        options.MaxStatementRetries = 20;
        options.LoggerFactory = logs;
        await harness.StartAsync(options);

        await using (await ChangelogLock.TakeAsync(harness.ConnectionString))
        {
            await harness.ExecuteAsync($"INSERT INTO orders (id, user_id) VALUES ('{O1}', 'alice'); INSERT INTO orders (id, user_id) VALUES ('{O2}', 'bob');");
            await WaitForRetriesAsync(harness, logs, 2, "took longer than BatchWriteTimeout (1 s)");
        }

        var rows = await harness.WaitForChangelogAsync(2);
        Assert.Equal([$"user:alice orders {O1} 1", $"user:bob orders {O2} 1"], rows);
        var retry = logs.Entries.First(e => e.EventId.Id == ConflictRetrying);
        output.WriteLine(retry.Message);
        Assert.Matches(@"^A statement writing a batch of [12] change\(s\) to the changelog took longer than BatchWriteTimeout \(1 s\) and the server cancelled it \(statement timeout\)\. "
            + "The changelog database is slow or blocked: look for locks on the sidecar tables", retry.Message);
        Assert.Contains("Retry 1 of 20 (MaxStatementRetries)", retry.Message, StringComparison.Ordinal);
        Assert.False(harness.Running.IsCompleted);
        Assert.True(harness.Pipeline!.GetStatus().Reconnects >= 2);
    }

    [Fact]
    public async Task A_statement_cancelled_by_another_session_is_retried_and_written_exactly_once()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "conflict_cancelled");
        var logs = new RecordingLoggerFactory();
        var options = harness.Options();
        options.LoggerFactory = logs;
        await harness.StartAsync(options);

        await using (await ChangelogLock.TakeAsync(harness.ConnectionString))
        {
            await harness.ExecuteAsync($"INSERT INTO orders (id, user_id) VALUES ('{O1}', 'alice')");
            var deadline = DateTime.UtcNow.AddSeconds(30);
            // The writer's COPY waits for the lock; an operator cancels it.
            while (!await Sql.ScalarAsync<bool>(harness.ConnectionString,
                "SELECT count(pg_cancel_backend(pid)) > 0 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'COPY sync_changelog%'"))
            {
                Assert.True(DateTime.UtcNow < deadline, "the writer never waited for the lock");
                await Task.Delay(50);
            }
            await WaitForRetriesAsync(harness, logs, 1, "cancelled by another session");
        }

        Assert.Equal([$"user:alice orders {O1} 1"], await harness.WaitForChangelogAsync(1));
        var retry = logs.Entries.First(e => e.EventId.Id == ConflictRetrying);
        output.WriteLine(retry.Message);
        Assert.StartsWith("A statement was cancelled by another session (57014: canceling statement due to user request)", retry.Message, StringComparison.Ordinal);
        Assert.Contains("Retry 1 of 3 (MaxStatementRetries)", retry.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_truncate_past_its_timeout_is_retried_then_stops_the_pipeline_naming_it_and_a_restart_applies_it_once()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "conflict_truncate_timeout");
        var logs = new RecordingLoggerFactory();
        var options = harness.Options();
        options.TruncateTimeout = TimeSpan.FromSeconds(1);
        options.MaxStatementRetries = 1;
        options.LoggerFactory = logs;
        await harness.StartAsync(options);
        await harness.ExecuteAsync($"INSERT INTO orders (id, user_id) VALUES ('{O1}', 'alice'), ('{O2}', 'bob'); INSERT INTO order_lines VALUES (7, '{O1}', 1);");
        await harness.WaitForChangelogAsync(3);

        WalPipelineException error;
        await using (await ChangelogLock.TakeAsync(harness.ConnectionString))
        {
            await harness.ExecuteAsync("TRUNCATE orders, order_lines");
            error = await Assert.ThrowsAsync<WalPipelineException>(() => harness.Running.WaitAsync(TimeSpan.FromSeconds(60)));
        }
        output.WriteLine(error.Message);
        Assert.StartsWith("Applying the TRUNCATE of public.orders, public.order_lines (deleting the tables' bucket edges and writing a delete row for each) "
            + "took longer than TruncateTimeout (1 s) and the server cancelled it (statement timeout). Its time grows with the number of bucket edges the table had",
            error.Message, StringComparison.Ordinal);
        Assert.Contains("raise TruncateTimeout", error.Message, StringComparison.Ordinal);
        Assert.Contains("It happened 2 times in a row with nothing committed in between (MaxStatementRetries is 1), so the pipeline stops.", error.Message, StringComparison.Ordinal);
        Assert.Single(logs.Entries, e => e.EventId.Id == ConflictRetrying);
        Assert.Equal(3L, await harness.ScalarAsync<long>("SELECT count(*) FROM sync_changelog"));

        await harness.StopAsync().ContinueWith(_ => { }, TaskScheduler.Default);
        await harness.StartAsync();
        var rows = await harness.WaitForChangelogAsync(6);
        Assert.Equal(
        [
            $"user:alice orders {O1} 1", $"user:bob orders {O2} 1", "user:alice order_lines 7 1",
            $"user:alice orders {O1} 3", $"user:bob orders {O2} 3", "user:alice order_lines 7 3",
        ], rows);
    }
}
