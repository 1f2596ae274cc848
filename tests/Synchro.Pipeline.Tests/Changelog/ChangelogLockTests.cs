using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Npgsql;
using Synchro.Pipeline.Changelog;
using Synchro.Pipeline.Tests.Infrastructure;
using Synchro.Pipeline.Tests.Pipeline;

namespace Synchro.Pipeline.Tests.Changelog;

/// <summary>
/// One changelog, one writer (invariant 9): a second pipeline writing the same changelog — another source, another slot —
/// refuses to start and names the holder; the lock is the writing session's, so a pipeline never writes without it.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class ChangelogLockTests(PostgresServerFixture postgres)
{
    private const string First = "00000000-0000-0000-0000-0000000000e1";
    private const string Second = "00000000-0000-0000-0000-0000000000e2";
    private const string Third = "00000000-0000-0000-0000-0000000000e3";
    private const string Fourth = "00000000-0000-0000-0000-0000000000e4";

    private const int LockTakenAgain = 1031;

    private const string LockHolderSql = """
        SELECT l.pid FROM pg_locks l
        WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2 AND l.classid = @c::oid AND l.objid = hashtext(@s)::oid
        """;

    private const string HolderAddressSql = "SELECT coalesce(host(client_addr), 'a local socket') FROM pg_stat_activity WHERE pid = @p";

    [Fact]
    public async Task A_second_pipeline_on_another_slot_refuses_to_start_naming_the_holder_and_starts_once_the_first_stopped()
    {
        var changelog = await postgres.CreateDatabaseAsync("writer_lock_changelog");
        await using var first = await AttachAsync("writer_lock_first", changelog);
        await using var second = await AttachAsync("writer_lock_second", changelog);
        var firstOptions = first.Options();
        firstOptions.ChangelogConnectionString = new NpgsqlConnectionStringBuilder(changelog) { ApplicationName = "first-writer" }.ConnectionString;
        await first.StartAsync(firstOptions);
        await first.ExecuteAsync($"INSERT INTO orders (id, user_id) VALUES ('{First}', 'alice')");
        await first.WaitForChangelogAsync(1);
        var holder = await LockHolderAsync(changelog, "public");
        var address = await Sql.ScalarAsync<string>(changelog, HolderAddressSql, ("p", holder!.Value));

        var started = Stopwatch.GetTimestamp();
        await using (var refused = new WalPipeline(second.Options()))
        {
            var error = await Assert.ThrowsAsync<WalPipelineException>(() => refused.RunAsync().WaitAsync(TimeSpan.FromSeconds(60)));
            Assert.True(Stopwatch.GetElapsedTime(started) < TimeSpan.FromSeconds(15), $"refused after {Stopwatch.GetElapsedTime(started)}");
            Assert.StartsWith($"The changelog in schema \"public\" of this database is already written by another pipeline (backend pid {holder}, "
                + $"application_name 'first-writer', client {address}, role \"postgres\", connected since ", error.Message, StringComparison.Ordinal);
            Assert.Contains($", slot '{first.Slot}'). One changelog has one writer: two would interleave seq out of commit order, and clients would miss rows. "
                + "Stop the other pipeline, or give this one a changelog of its own", error.Message, StringComparison.Ordinal);
            Assert.EndsWith($"or end its session with SELECT pg_terminate_backend({holder}).", error.Message, StringComparison.Ordinal);
            Assert.Equal(WalPipelineState.Failed, refused.GetStatus().State);
        }
        // It refused before anything: no slot, no position.
        Assert.Equal(0L, await Sql.ScalarAsync<long>(second.ConnectionString, $"SELECT count(*) FROM pg_replication_slots WHERE slot_name = '{second.Slot}'"));
        Assert.Equal(0L, await Sql.ScalarAsync<long>(changelog, $"SELECT count(*) FROM sync_wal_position WHERE slot_name = '{second.Slot}'"));

        // The first was not disturbed.
        await first.ExecuteAsync($"INSERT INTO orders (id, user_id) VALUES ('{Second}', 'bob')");
        await first.WaitForChangelogAsync(2);
        Assert.Equal(0L, first.Pipeline!.GetStatus().Reconnects);
        await first.StopAsync();

        await second.StartAsync(second.Options());
        await second.ExecuteAsync($"INSERT INTO orders (id, user_id) VALUES ('{Third}', 'carol')");
        Assert.Equal([$"user:alice orders {First} 1", $"user:bob orders {Second} 1", $"user:carol orders {Third} 1"], await second.WaitForChangelogAsync(3));
    }

    [Fact]
    public async Task A_pipeline_whose_lock_session_died_takes_the_lock_again_before_it_writes_and_never_writes_while_another_holds_it()
    {
        var changelog = await postgres.CreateDatabaseAsync("writer_lock_lost_changelog");
        await using var first = await AttachAsync("writer_lock_lost_first", changelog);
        await using var other = await AttachAsync("writer_lock_lost_other", changelog);
        var logs = new RecordingLoggerFactory(LogLevel.Information);
        var options = first.Options();
        options.LoggerFactory = logs;
        // Without heartbeats the writer touches its session only for the changes this test makes.
        options.HeartbeatInterval = TimeSpan.Zero;
        await first.StartAsync(options);
        await first.ExecuteAsync($"INSERT INTO orders (id, user_id) VALUES ('{First}', 'alice')");
        await first.WaitForChangelogAsync(1);

        // The lock's session dies; the next change finds it gone and takes the lock again, on a new session, before writing.
        var holder = await LockHolderAsync(changelog, "public");
        await Sql.ExecuteAsync(changelog, $"SELECT pg_terminate_backend({holder})");
        await first.ExecuteAsync($"INSERT INTO orders (id, user_id) VALUES ('{Second}', 'bob')");
        Assert.Equal([$"user:alice orders {First} 1", $"user:bob orders {Second} 1"], await first.WaitForChangelogAsync(2));
        var taken = await LockHolderAsync(changelog, "public");
        Assert.NotEqual(holder, taken);
        Assert.Contains(logs.Entries, e => e.EventId.Id == LockTakenAgain && e.Message.Contains("its session was lost", StringComparison.Ordinal));
        Assert.True(first.Pipeline!.GetStatus().Reconnects >= 1);

        // The session dies again, and another pipeline takes the lock meanwhile: the first stops without writing.
        await Sql.ExecuteAsync(changelog, $"SELECT pg_terminate_backend({taken})");
        await other.StartAsync(other.Options());
        await first.ExecuteAsync($"INSERT INTO orders (id, user_id) VALUES ('{Third}', 'carol')");
        var stopped = await Assert.ThrowsAsync<WalPipelineException>(() => first.Running.WaitAsync(TimeSpan.FromSeconds(60)));
        Assert.StartsWith("The changelog in schema \"public\" of this database is already written by another pipeline (backend pid ", stopped.Message, StringComparison.Ordinal);
        Assert.Contains($"slot '{other.Slot}'", stopped.Message, StringComparison.Ordinal);
        await other.ExecuteAsync($"INSERT INTO orders (id, user_id) VALUES ('{Fourth}', 'dora')");
        Assert.Equal([$"user:alice orders {First} 1", $"user:bob orders {Second} 1", $"user:dora orders {Fourth} 1"], await other.WaitForChangelogAsync(3));
        await Assert.ThrowsAsync<WalPipelineException>(first.StopAsync);

        // Once the other one stops, the first resumes from its persisted position: the change it did not write arrives once.
        await other.StopAsync();
        await first.StartAsync(options);
        Assert.Equal([$"user:alice orders {First} 1", $"user:bob orders {Second} 1", $"user:dora orders {Fourth} 1", $"user:carol orders {Third} 1"],
            await first.WaitForChangelogAsync(4));
    }

    [Fact]
    public async Task A_run_that_ends_while_its_writer_waits_for_a_table_lock_ends_its_own_old_session_and_goes_on()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "writer_lock_own_session");
        var logs = new RecordingLoggerFactory(LogLevel.Information);
        var options = harness.Options();
        options.LoggerFactory = logs;
        await harness.StartAsync(options);
        await harness.ExecuteAsync($"INSERT INTO orders (id, user_id) VALUES ('{First}', 'alice')");
        await harness.WaitForChangelogAsync(1);
        var writer = await LockHolderAsync(harness.ConnectionString, "public");

        // The writer's next COPY waits for this lock; then the replication connection drops, which ends the run.
        await using (var blocker = new NpgsqlConnection(harness.ConnectionString))
        {
            await blocker.OpenAsync();
            await using var blocking = await blocker.BeginTransactionAsync();
            await using (var lockTable = new NpgsqlCommand("LOCK TABLE sync_changelog IN ACCESS EXCLUSIVE MODE", blocker, blocking))
                await lockTable.ExecuteNonQueryAsync();
            await harness.ExecuteAsync($"INSERT INTO orders (id, user_id) VALUES ('{Second}', 'bob')");
            await OperationsSql.WaitUntilAsync(async () => await Sql.ScalarAsync<bool>(harness.ConnectionString,
                    "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = @p AND wait_event_type = 'Lock')", ("p", writer!.Value)),
                "the writer to wait for the table lock", TimeSpan.FromSeconds(30), harness);
            await harness.ExecuteAsync($"SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = '{harness.Slot}'");
            // The old session still waits, holding the changelog lock: the next run ends it rather than refuse to start.
            await OperationsSql.WaitUntilAsync(() => Task.FromResult(logs.Entries.Any(e => e.EventId.Id == LockTakenAgain
                    && e.Message.Contains($"own earlier session (backend pid {writer})", StringComparison.Ordinal))),
                "the next run to end its old session", TimeSpan.FromSeconds(30), harness);
            await blocking.RollbackAsync();
        }

        Assert.Equal([$"user:alice orders {First} 1", $"user:bob orders {Second} 1"], await harness.WaitForChangelogAsync(2));
        Assert.NotEqual(writer, await LockHolderAsync(harness.ConnectionString, "public"));
        Assert.DoesNotContain(logs.Entries, e => e.EventId.Id == 1005);
    }

    [Fact]
    public async Task Changelogs_in_two_schemas_of_one_database_have_a_writer_each()
    {
        var changelog = await postgres.CreateDatabaseAsync("writer_lock_schemas");
        await using var first = await AttachAsync("writer_lock_schema_a", changelog);
        await first.StartAsync(first.Options());
        // A second changelog beside the first is created on purpose (a start does not do it on its own).
        await Sql.ExecuteAsync(changelog, "CREATE SCHEMA tenant_b");
        var inSchema = new NpgsqlConnectionStringBuilder(changelog) { SearchPath = "tenant_b" }.ConnectionString;
        await using (var connection = new NpgsqlConnection(inSchema))
        {
            await connection.OpenAsync();
            await ChangelogSchema.EnsureAsync(connection);
        }
        await using var second = await AttachAsync("writer_lock_schema_b", inSchema);
        await second.StartAsync(second.Options());
        await first.ExecuteAsync($"INSERT INTO orders (id, user_id) VALUES ('{First}', 'alice')");
        await second.ExecuteAsync($"INSERT INTO orders (id, user_id) VALUES ('{Second}', 'bob')");

        Assert.Equal([$"user:alice orders {First} 1"], await first.WaitForChangelogAsync(1));
        Assert.Equal([$"user:bob orders {Second} 1"], await second.WaitForChangelogAsync(1));
        Assert.NotNull(await LockHolderAsync(changelog, "public"));
        Assert.NotNull(await LockHolderAsync(changelog, "tenant_b"));
    }

    /// <summary>A source database with the demo schema whose pipeline writes to <paramref name="changelog"/>.</summary>
    private async Task<PipelineHarness> AttachAsync(string name, string changelog)
    {
        var source = await postgres.CreateDatabaseAsync(name);
        await Sql.ExecuteAsync(source, PipelineHarness.Schema);
        return PipelineHarness.Attach(source, "slot_" + name, changelog);
    }

    private static async Task<int?> LockHolderAsync(string changelog, string schema)
        => await Sql.ScalarAsync<object>(changelog, LockHolderSql, ("c", ChangelogLock.LockClass), ("s", schema)) as int?;
}
