using Synchro.Pipeline.Registry;
using Synchro.Pipeline.Tests.Infrastructure;
using Synchro.Pipeline.Tests.Pipeline;
using Xunit.Abstractions;

namespace Synchro.Pipeline.Tests.Buckets;

/// <summary>
/// A SQL bucket function past <see cref="WalPipelineOptions.RuleQueryTimeout"/>: one change that alone runs past it is a
/// rule failure for that change (invariant 7) and everything around it is written; a function that is slow or blocked for
/// every change is an operational error, retried <see cref="WalPipelineOptions.MaxStatementRetries"/> times from the
/// persisted position and then fatal with a message that names the timeout and what to do — exactly once throughout.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class RuleTimeoutTests(PostgresServerFixture postgres, ITestOutputHelper output)
{
    private const int ConflictRetrying = 1021;

    // The function sleeps far past the timeout for a row marked slow, or for every row while rule_mode says so; it reads
    // rule_owners, which a test locks to block it.
    private const string Schema = """
        CREATE TABLE tasks (id int PRIMARY KEY, owner text NOT NULL, slow boolean NOT NULL DEFAULT false);
        ALTER PUBLICATION synchro_pub ADD TABLE tasks;
        CREATE TABLE rule_mode (all_slow boolean NOT NULL);
        INSERT INTO rule_mode VALUES (false);
        CREATE TABLE rule_owners (owner text PRIMARY KEY, team text NOT NULL);
        CREATE FUNCTION task_buckets(table_name text, operation text, new_row jsonb, old_row jsonb) RETURNS SETOF text LANGUAGE plpgsql AS $$
        BEGIN
          IF (new_row->>'slow')::boolean OR (SELECT all_slow FROM rule_mode) THEN PERFORM pg_sleep(10); END IF;
          RETURN NEXT 'user:' || (new_row->>'owner');
          RETURN QUERY SELECT 'team:' || team FROM rule_owners WHERE owner = new_row->>'owner';
        END $$;
        """;

    private static readonly TimeSpan s_ruleTimeout = TimeSpan.FromSeconds(1);

    private static WalPipelineOptions Options(PipelineHarness harness, RecordingLoggerFactory logs, int maxRetries = 3)
    {
        var options = harness.Options();
        options.Tables = PipelineHarness.Registry().Add(new TableRegistration("tasks") { BucketFunction = "task_buckets", SoftDeleteColumn = null });
        options.RuleQueryTimeout = s_ruleTimeout;
        options.MaxStatementRetries = maxRetries;
        options.LoggerFactory = logs;
        return options;
    }

    private static async Task<PipelineHarness> CreateAsync(PostgresServerFixture postgres, string name)
    {
        var harness = await PipelineHarness.CreateAsync(postgres, name);
        await harness.ExecuteAsync(Schema);
        return harness;
    }

    [Fact]
    public async Task A_change_whose_rule_alone_runs_past_the_timeout_is_a_rule_failure_and_everything_around_it_is_written()
    {
        await using var harness = await CreateAsync(postgres, "rule_timeout_row");
        var logs = new RecordingLoggerFactory();
        await harness.StartAsync(Options(harness, logs));

        // One slow row in the middle of a transaction; then two slow rows around a quick one; then a quick transaction.
        await harness.ExecuteAsync("""
            INSERT INTO tasks VALUES (1, 'a', false), (2, 'b', false), (3, 'c', true), (4, 'd', false), (5, 'e', false);
            INSERT INTO tasks VALUES (7, 'g', true), (8, 'h', false), (9, 'i', true);
            INSERT INTO tasks VALUES (10, 'j', false);
            """);

        var rows = await harness.WaitForChangelogAsync(6, TimeSpan.FromSeconds(60));
        Assert.Equal(
            ["user:a tasks 1 1", "user:b tasks 2 1", "user:d tasks 4 1", "user:e tasks 5 1", "user:h tasks 8 1", "user:j tasks 10 1"],
            rows.Where(r => r.Contains(" tasks ", StringComparison.Ordinal)));
        var failures = await Sql.RowsAsync(harness.ConnectionString, "SELECT record_id || ': ' || error_text FROM sync_rule_failures ORDER BY id");
        Assert.Equal(["3", "7", "9"], failures.Select(f => f.Split(':')[0]));
        Assert.All(failures, f => Assert.Contains(": bucket function task_buckets took longer than RuleQueryTimeout (1 s) on this change alone and the server cancelled it; "
            + "make the function faster for this row or raise RuleQueryTimeout, then replay-failures", f, StringComparison.Ordinal));
        Assert.False(harness.Running.IsCompleted);
        Assert.DoesNotContain(logs.Entries, e => e.EventId.Id == ConflictRetrying || e.Level >= Microsoft.Extensions.Logging.LogLevel.Error);
        Assert.Equal(0, harness.Pipeline!.GetStatus().Reconnects);
        output.WriteLine(string.Join(Environment.NewLine, failures));
    }

    [Fact]
    public async Task A_rule_blocked_for_every_change_is_retried_from_the_persisted_position_and_goes_on_exactly_once_when_it_is_free()
    {
        await using var harness = await CreateAsync(postgres, "rule_timeout_blocked");
        var logs = new RecordingLoggerFactory();
        await harness.StartAsync(Options(harness, logs, maxRetries: 10));

        // Another session holds the table the function reads: every change waits for it.
        await using var locker = new Npgsql.NpgsqlConnection(harness.ConnectionString);
        await locker.OpenAsync();
        await using var transaction = await locker.BeginTransactionAsync();
        await using (var hold = new Npgsql.NpgsqlCommand("LOCK TABLE rule_owners IN ACCESS EXCLUSIVE MODE", locker, transaction))
            await hold.ExecuteNonQueryAsync();
        await harness.ExecuteAsync("INSERT INTO tasks VALUES (1, 'a'), (2, 'b'), (3, 'c')");

        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (logs.Entries.Count(e => e.EventId.Id == ConflictRetrying) < 2)
        {
            Assert.True(DateTime.UtcNow < deadline, "the blocked rule was not retried twice in 30 s");
            Assert.False(harness.Running.IsCompleted, "the pipeline stopped while the rule was blocked");
            await Task.Delay(100);
        }
        var status = harness.Pipeline!.GetStatus();
        await transaction.RollbackAsync();

        var rows = await harness.WaitForChangelogAsync(3, TimeSpan.FromSeconds(60));
        Assert.Equal(["user:a tasks 1 1", "user:b tasks 2 1", "user:c tasks 3 1"], rows);
        Assert.Equal(0L, await harness.ScalarAsync<long>("SELECT count(*) FROM sync_rule_failures"));
        var retry = logs.Entries.First(e => e.EventId.Id == ConflictRetrying);
        Assert.Contains("Bucket function task_buckets, on two changes in a row, each on its own (so it is slow or blocked for every change, not for one row)", retry.Message, StringComparison.Ordinal);
        Assert.Contains("took longer than RuleQueryTimeout (1 s)", retry.Message, StringComparison.Ordinal);
        Assert.Contains("Retry 1 of 10 (MaxStatementRetries)", retry.Message, StringComparison.Ordinal);
        Assert.True(status.RetryAttempts >= 1, $"status while retrying: {status.State}, {status.RetryAttempts} attempts");
        Assert.False(harness.Running.IsCompleted);
        output.WriteLine(retry.Message);
    }

    [Fact]
    public async Task A_rule_slow_for_every_change_stops_the_pipeline_after_the_bounded_retries_saying_what_to_do_and_a_restart_after_the_fix_writes_once()
    {
        await using var harness = await CreateAsync(postgres, "rule_timeout_fatal");
        var logs = new RecordingLoggerFactory();
        await harness.StartAsync(Options(harness, logs, maxRetries: 2));

        await harness.ExecuteAsync("UPDATE rule_mode SET all_slow = true; INSERT INTO tasks VALUES (1, 'a'), (2, 'b'), (3, 'c');");

        var error = await Assert.ThrowsAsync<WalPipelineException>(() => harness.Running.WaitAsync(TimeSpan.FromSeconds(90)));
        output.WriteLine(error.Message);
        Assert.Contains("Bucket function task_buckets, on two changes in a row, each on its own (so it is slow or blocked for every change, not for one row), took longer than RuleQueryTimeout (1 s)", error.Message, StringComparison.Ordinal);
        Assert.Contains("Check the rule", error.Message, StringComparison.Ordinal);
        Assert.Contains("raise RuleQueryTimeout", error.Message, StringComparison.Ordinal);
        Assert.Contains("3 times in a row with nothing committed in between (MaxStatementRetries is 2)", error.Message, StringComparison.Ordinal);
        Assert.Equal(2, logs.Entries.Count(e => e.EventId.Id == ConflictRetrying));
        Assert.Equal(WalPipelineState.Failed, harness.Pipeline!.GetStatus().State);
        // The failed attempts' changelog transactions rolled back: nothing of them stays.
        Assert.Equal(0L, await harness.ScalarAsync<long>("SELECT count(*) FROM sync_changelog WHERE table_name = 'tasks'"));
        Assert.Equal(0L, await harness.ScalarAsync<long>("SELECT count(*) FROM sync_rule_failures"));

        await harness.StopAsync().ContinueWith(_ => { }, TaskScheduler.Default);
        await harness.ExecuteAsync("UPDATE rule_mode SET all_slow = false");
        await harness.StartAsync(Options(harness, new RecordingLoggerFactory()));
        var rows = await harness.WaitForChangelogAsync(3, TimeSpan.FromSeconds(30));
        Assert.Equal(["user:a tasks 1 1", "user:b tasks 2 1", "user:c tasks 3 1"], rows);
    }
}
