using System.Text.RegularExpressions;
using Microsoft.Extensions.Logging;
using Npgsql;
using Synchro.Pipeline.Diagnostics;
using Synchro.Pipeline.LocalPostgres;
using Synchro.Pipeline.Protocol;
using Synchro.Pipeline.Tests.Infrastructure;

namespace Synchro.Pipeline.Tests.Pipeline;

/// <summary>
/// Invariant 8, on live pipelines: a persisted position that does not belong to the source — ahead of its WAL, of another
/// cluster or database, behind its slot, off its timeline — is refused before anything is streamed or confirmed, and
/// after the fix its message gives (run as printed), the changes arrive.
/// </summary>
[Collection(PostgresCollection.Name)]
[Trait(TestCategories.Name, TestCategories.VersionSensitive)]
public sealed partial class SourcePositionTests(PostgresServerFixture postgres)
{
    private const string Order = "00000000-0000-0000-0000-000000000001";

    [Fact]
    public async Task A_position_ahead_of_the_servers_wal_is_refused_and_nothing_is_skipped_or_confirmed()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "position_ahead");
        await harness.StartAsync();
        await harness.ExecuteAsync("INSERT INTO categories VALUES (1, 'a')");
        await harness.WaitForChangelogAsync(1);
        await harness.StopAsync();
        var confirmed = await SlotConfirmedAsync(harness);

        // What a changelog restored from a later backup leaves: a position 1 GiB past everything the server has written.
        await SetPositionAsync(harness, await WalEndAsync(harness.ConnectionString) + (1L << 30));
        await harness.ExecuteAsync("INSERT INTO categories VALUES (2, 'b')");
        await harness.ExecuteAsync($"INSERT INTO orders (id, user_id) VALUES ('{Order}', 'alice')");
        await harness.ExecuteAsync($"UPDATE orders SET user_id = 'bob' WHERE id = '{Order}'");
        var logs = new RecordingLoggerFactory();

        var error = await Assert.ThrowsAsync<WalPipelineConfigurationException>(() => harness.StartAsync(WithLogs(harness.Options(), logs)));

        Assert.Contains("is ahead of everything this server has written", error.Message, StringComparison.Ordinal);
        Assert.Contains($"resume from the slot's own position {confirmed}", error.Message, StringComparison.Ordinal);
        Assert.Contains(logs.Entries, e => e is { EventId.Id: EventIds.PositionRefused, Level: LogLevel.Critical });
        Assert.Equal(confirmed, await SlotConfirmedAsync(harness));
        Assert.Equal(["global categories 1 1"], await harness.ChangelogAsync());

        await Sql.ExecuteAsync(harness.ChangelogConnectionString, Command(error, DeleteRow()));
        await harness.StartAsync();

        var rows = await harness.WaitForChangelogAsync(5);
        Assert.Equal(["global categories 1 1", "global categories 2 1", $"user:alice orders {Order} 1"], rows[..3]);
        Assert.Equal([$"user:alice orders {Order} 3", $"user:bob orders {Order} 1"], rows[3..].Order(StringComparer.Ordinal));
        Assert.True(await harness.ScalarAsync<bool>($"SELECT source_system_id = (SELECT system_identifier FROM pg_control_system()) FROM sync_wal_position WHERE slot_name = '{harness.Slot}'"));
    }

    [Fact]
    public async Task A_position_moved_past_the_wal_while_running_is_refused_at_the_reconnect()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "position_reconnect");
        await harness.StartAsync();
        await harness.ExecuteAsync("INSERT INTO categories VALUES (1, 'a')");
        await harness.WaitForChangelogAsync(1);

        // The writer's saves keep the later position (it never moves back); the next run must not trust it.
        await SetPositionAsync(harness, await WalEndAsync(harness.ConnectionString) + (1L << 30));
        await harness.ExecuteAsync($"SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = '{harness.Slot}'");

        var error = await Assert.ThrowsAsync<WalPipelineConfigurationException>(() => harness.Running.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Contains("is ahead of everything this server has written", error.Message, StringComparison.Ordinal);
        var status = harness.Pipeline!.GetStatus();
        Assert.Equal(WalPipelineState.Failed, status.State);
        Assert.True(status.Reconnects >= 1, "the refusal came at a reconnect");
        Assert.True(await SlotConfirmedAsync(harness) <= await WalEndAsync(harness.ConnectionString));
    }

    [Fact]
    public async Task A_position_of_another_cluster_with_the_same_slot_name_is_refused_before_anything_is_created()
    {
        // Two sources whose pipelines share a slot name and a changelog database.
        await using var otherCluster = await LocalPostgresServer.StartAsync();
        var changelog = await postgres.CreateDatabaseAsync("position_cluster_changelog");
        var first = await postgres.CreateDatabaseAsync("position_cluster_a");
        var second = await otherCluster.CreateDatabaseAsync("position_cluster_b");
        await Sql.ExecuteAsync(first, PipelineHarness.Schema);
        await Sql.ExecuteAsync(second, PipelineHarness.Schema);
        await using (var owner = PipelineHarness.Attach(first, "shared_slot", changelog))
        {
            await owner.StartAsync();
            await owner.ExecuteAsync("INSERT INTO categories VALUES (1, 'a')");
            await owner.WaitForChangelogAsync(1);
            await owner.StopAsync();
        }
        var row = await PositionRowAsync(changelog, "shared_slot");
        await using var intruder = PipelineHarness.Attach(second, "shared_slot", changelog);

        var error = await Assert.ThrowsAsync<WalPipelineConfigurationException>(() => intruder.StartAsync());

        Assert.Contains("was saved from another PostgreSQL cluster (system identifier", error.Message, StringComparison.Ordinal);
        Assert.Contains("give this pipeline its own slot (SlotName) and its own changelog database", error.Message, StringComparison.Ordinal);
        Assert.False(await Sql.ScalarAsync<bool>(second, "SELECT EXISTS (SELECT FROM pg_replication_slots)"), "nothing is created on a source the position does not belong to");
        Assert.Equal(row, await PositionRowAsync(changelog, "shared_slot"));

        // The fix: its own slot and changelog.
        await using var own = PipelineHarness.Attach(second, "own_slot", await postgres.CreateDatabaseAsync("position_cluster_b_changelog"));
        await own.StartAsync();
        await own.ExecuteAsync("INSERT INTO categories VALUES (10, 'b')");
        Assert.Equal(["global categories 10 1"], await own.WaitForChangelogAsync(1));
    }

    [Fact]
    public async Task A_position_of_another_database_is_refused_and_the_rebuild_streams_the_new_one()
    {
        var changelog = await postgres.CreateDatabaseAsync("position_db_changelog");
        var before = await postgres.CreateDatabaseAsync("position_db_before");
        var after = await postgres.CreateDatabaseAsync("position_db_after");
        await Sql.ExecuteAsync(before, PipelineHarness.Schema);
        await Sql.ExecuteAsync(after, PipelineHarness.Schema);
        await using (var old = PipelineHarness.Attach(before, "db_slot", changelog))
        {
            await old.StartAsync();
            await old.ExecuteAsync("INSERT INTO categories VALUES (1, 'a')");
            await old.WaitForChangelogAsync(1);
            await old.StopAsync();
        }
        // Slot names are unique in a cluster: the old database's slot is dropped to reuse the name for the new one.
        await Sql.ExecuteAsync(before, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = 'db_slot'");
        await Sql.ExecuteAsync(after, "INSERT INTO categories VALUES (2, 'b')");
        await using var harness = PipelineHarness.Attach(after, "db_slot", changelog);

        var error = await Assert.ThrowsAsync<WalPipelineConfigurationException>(() => harness.StartAsync());

        Assert.Matches(@"was saved from database 'position_db_before_\d+' \(OID \d+\), but this pipeline reads database 'position_db_after_\d+'", error.Message);
        Assert.False(await Sql.ScalarAsync<bool>(after, "SELECT EXISTS (SELECT FROM pg_replication_slots WHERE slot_name = 'db_slot')"));
        Assert.DoesNotContain("pg_drop_replication_slot", error.Message, StringComparison.Ordinal);

        // The rebuild: no slot to drop; the row goes, and the new slot's snapshot loads the new database's edges.
        await Sql.ExecuteAsync(changelog, Command(error, DeleteRow()));
        await harness.StartAsync();
        await harness.ExecuteAsync("INSERT INTO categories VALUES (3, 'c')");

        Assert.Equal(["global categories 1 1", "global categories 3 1"], await harness.WaitForChangelogAsync(2));
        Assert.Equal(2L, await Sql.ScalarAsync<long>(changelog, "SELECT count(*) FROM sync_bucket_edges WHERE table_name = 'categories' AND record_id IN ('2', '3')"));
    }

    [Fact]
    public async Task A_slot_confirmed_past_the_position_means_lost_batches_and_is_refused_until_rebuilt()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "position_behind");
        await harness.StartAsync();
        await harness.ExecuteAsync("INSERT INTO categories VALUES (1, 'a')");
        await harness.WaitForChangelogAsync(1);
        var older = await PersistedAsync(harness);
        await harness.ExecuteAsync("INSERT INTO categories VALUES (2, 'b')");
        await harness.WaitForChangelogAsync(2);
        await harness.StopAsync();
        var confirmed = await SlotConfirmedAsync(harness);

        // A changelog restored from a backup taken before the second batch; the slot was confirmed past it meanwhile.
        await harness.ExecuteAsync($"DELETE FROM sync_changelog WHERE record_id = '2'; DELETE FROM sync_bucket_edges WHERE record_id = '2'");
        await SetPositionAsync(harness, older);

        var error = await Assert.ThrowsAsync<WalPipelineConfigurationException>(() => harness.StartAsync());

        Assert.Contains($"has been confirmed up to {confirmed}", error.Message, StringComparison.Ordinal);
        Assert.Contains($"past the persisted position {older}", error.Message, StringComparison.Ordinal);
        Assert.Equal(confirmed, await SlotConfirmedAsync(harness));
        Assert.Equal(["global categories 1 1"], await harness.ChangelogAsync());

        // The rebuild, as printed: drop the slot, drop the row, start (InitialSnapshot is on by default).
        await harness.ExecuteAsync(Command(error, DropSlot()));
        await harness.ExecuteAsync(Command(error, DeleteRow()));
        await harness.StartAsync();
        await harness.ExecuteAsync("INSERT INTO categories VALUES (3, 'c')");

        Assert.Equal(["global categories 1 1", "global categories 3 1"], await harness.WaitForChangelogAsync(2));
        Assert.Equal(1L, await harness.ScalarAsync<long>("SELECT count(*) FROM sync_bucket_edges WHERE table_name = 'categories' AND record_id = '2'"));
    }

    [Fact]
    public async Task A_position_past_the_fork_of_a_promoted_copy_is_refused_and_resumes_from_the_fork()
    {
        await using var primary = await LocalPostgresServer.StartAsync();
        var changelog = await postgres.CreateDatabaseAsync("position_timeline_changelog");
        var source = await primary.CreateDatabaseAsync("app");
        await Sql.ExecuteAsync(source, PipelineHarness.Schema);
        // Not disposed: disposing a harness drops its slot, which the copy must inherit.
        var onPrimary = PipelineHarness.Attach(source, "failover_slot", changelog);
        await onPrimary.StartAsync();
        await onPrimary.ExecuteAsync("INSERT INTO categories VALUES (1, 'a')");
        await onPrimary.WaitForChangelogAsync(1);
        await onPrimary.StopAsync();

        // A standby that stops receiving here, and is promoted later: its timeline forks at this point.
        await using var promoted = await primary.StartPromotedCopyAsync();
        // Copying restarted the primary: the connections pooled before it are gone.
        await using (var stale = new NpgsqlConnection(source))
            NpgsqlConnection.ClearPool(stale);
        await onPrimary.StartAsync();
        await onPrimary.ExecuteAsync("INSERT INTO categories VALUES (2, 'only on the old primary')");
        await onPrimary.WaitForChangelogAsync(2);
        await onPrimary.StopAsync();
        await primary.StopAsync();
        var failedOver = promoted.ConnectionString("app");
        await Sql.ExecuteAsync(failedOver, "INSERT INTO categories VALUES (3, 'on the new primary')");
        var slotBefore = await Sql.ScalarAsync<string>(failedOver, "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = 'failover_slot'");
        await using var harness = PipelineHarness.Attach(failedOver, "failover_slot", changelog);

        var error = await Assert.ThrowsAsync<WalPipelineConfigurationException>(() => harness.StartAsync());

        Assert.Contains("was saved on timeline 1, but this server is on timeline 2, whose history left timeline 1 at", error.Message, StringComparison.Ordinal);
        Assert.Equal(slotBefore, await Sql.ScalarAsync<string>(failedOver, "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = 'failover_slot'"));

        await Sql.ExecuteAsync(changelog, Command(error, UpdateRow()));
        await harness.StartAsync();
        await harness.ExecuteAsync("INSERT INTO categories VALUES (4, 'after the fix')");

        // The lost branch's row stays (clients resync); the new primary's changes after the fork arrive, none twice.
        Assert.Equal(
            ["global categories 1 1", "global categories 2 1", "global categories 3 1", "global categories 4 1"],
            await harness.WaitForChangelogAsync(4));
    }

    [Fact]
    public async Task A_row_written_before_the_binding_existed_is_accepted_and_bound_at_the_next_save()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "position_unbound");
        await harness.StartAsync();
        await harness.ExecuteAsync("INSERT INTO categories VALUES (1, 'a')");
        await harness.WaitForChangelogAsync(1);
        await harness.StopAsync();
        await harness.ExecuteAsync("UPDATE sync_wal_position SET source_system_id = NULL, source_timeline = NULL, source_database_oid = NULL, source_database = NULL");

        await harness.StartAsync();
        await harness.ExecuteAsync("INSERT INTO categories VALUES (2, 'b')");

        Assert.Equal(["global categories 1 1", "global categories 2 1"], await harness.WaitForChangelogAsync(2));
        Assert.True(await harness.ScalarAsync<bool>($"""
            SELECT p.source_system_id = (SELECT system_identifier FROM pg_control_system())
               AND p.source_timeline = 1
               AND p.source_database_oid = (SELECT oid FROM pg_database WHERE datname = current_database())
               AND p.source_database = current_database()
            FROM sync_wal_position p WHERE p.slot_name = '{harness.Slot}'
            """));
    }

    [Fact]
    public async Task A_slot_dropped_while_stopped_is_created_again_and_the_position_moves_to_it_with_a_warning()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "position_new_slot");
        var options = harness.Options();
        options.InitialSnapshot = false;
        await harness.StartAsync(options);
        await harness.ExecuteAsync("INSERT INTO categories VALUES (1, 'a')");
        await harness.WaitForChangelogAsync(1);
        await harness.StopAsync();
        var earlier = await PersistedAsync(harness);
        await harness.ExecuteAsync($"SELECT pg_drop_replication_slot('{harness.Slot}')");
        await harness.ExecuteAsync("INSERT INTO categories VALUES (2, 'while no slot existed')");
        var logs = new RecordingLoggerFactory();
        options = WithLogs(harness.Options(), logs);
        options.InitialSnapshot = false;

        await harness.StartAsync(options);

        var created = await SlotConfirmedAsync(harness);
        Assert.True(created > earlier);
        Assert.Equal(created, await PersistedAsync(harness));
        var warning = Assert.Single(logs.Entries, e => e.EventId.Id == EventIds.SlotRecreatedAfterPosition);
        Assert.Contains($"{earlier}", warning.Message, StringComparison.Ordinal);
        await harness.ExecuteAsync("INSERT INTO categories VALUES (3, 'c')");
        Assert.Equal(["global categories 1 1", "global categories 3 1"], await harness.WaitForChangelogAsync(2));
    }

    private static WalPipelineOptions WithLogs(WalPipelineOptions options, RecordingLoggerFactory logs)
    {
        options.LoggerFactory = logs;
        return options;
    }

    /// <summary>The command of <paramref name="pattern"/> as the refusal prints it, to run as an operator would.</summary>
    private static string Command(Exception refusal, Regex pattern)
    {
        var match = pattern.Match(refusal.Message);
        Assert.True(match.Success, $"The refusal prints no command matching {pattern}: {refusal.Message}");
        return match.Value;
    }

    [GeneratedRegex(@"DELETE FROM sync_wal_position WHERE slot_name = '[a-z0-9_]+'")]
    private static partial Regex DeleteRow();

    [GeneratedRegex(@"UPDATE sync_wal_position SET .+? WHERE slot_name = '[a-z0-9_]+'")]
    private static partial Regex UpdateRow();

    [GeneratedRegex(@"SELECT pg_drop_replication_slot\('[a-z0-9_]+'\)")]
    private static partial Regex DropSlot();

    private static async Task<Lsn> SlotConfirmedAsync(PipelineHarness harness)
        => Lsn.Parse(await harness.ScalarAsync<string>($"SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = '{harness.Slot}'"));

    private static async Task<Lsn> WalEndAsync(string connectionString)
        => Lsn.Parse(await Sql.ScalarAsync<string>(connectionString, "SELECT pg_current_wal_flush_lsn()::text"));

    private static async Task<Lsn> PersistedAsync(PipelineHarness harness)
        => new(unchecked((ulong)await Sql.ScalarAsync<long>(harness.ChangelogConnectionString, "SELECT confirmed_lsn FROM sync_wal_position WHERE slot_name = @slot", ("slot", harness.Slot))));

    private static Task SetPositionAsync(PipelineHarness harness, Lsn position)
        => Sql.ExecuteAsync(harness.ChangelogConnectionString, $"UPDATE sync_wal_position SET confirmed_lsn = {unchecked((long)position.Value)} WHERE slot_name = '{harness.Slot}'");

    private static Task<string> PositionRowAsync(string changelog, string slot)
        => Sql.ScalarAsync<string>(changelog, "SELECT row(confirmed_lsn, source_system_id, source_timeline, source_database_oid, source_database)::text FROM sync_wal_position WHERE slot_name = @slot", ("slot", slot));
}
