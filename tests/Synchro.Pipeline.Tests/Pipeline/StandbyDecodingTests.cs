using System.Diagnostics;
using Npgsql;
using Synchro.Pipeline.LocalPostgres;
using Synchro.Pipeline.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Synchro.Pipeline.Tests.Pipeline;

/// <summary>
/// Decoding on a hot standby (PostgreSQL 16+): the slot on the standby, the changelog and every write on the primary. The
/// heartbeats and the running-xacts record a new slot waits for are written on the primary, in the source database.
/// </summary>
public sealed class StandbyDecodingTests(ITestOutputHelper output)
{
    private const string Database = "standby_source";
    private const string PhysicalSlot = "standby_physical";

    // Without pg_log_standby_snapshot() an idle primary never logs the record the creation waits for (the bgwriter logs
    // one every 15 s only after other WAL); with it, the creation ends within a second or two.
    private static readonly TimeSpan s_slotCreation = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task Decoding_a_standby_with_the_changelog_on_the_primary_is_exact_under_pgbench_and_heartbeats_move_the_idle_slot()
    {
        await using var primary = await LocalPostgresServer.StartAsync(new LocalPostgresOptions { Version = Postgres17ServerFixture.VersionOf17OrNewer });
        var onPrimary = await primary.CreateDatabaseAsync(Database);
        using var workload = await AuditedWorkload.CreateAsync(primary, onPrimary);
        // A row from before the slot, left out of the audit trail (which covers the stream): the initial snapshot, taken on
        // the standby, loads its edge.
        await Sql.ExecuteAsync(onPrimary, "INSERT INTO audited_orders (id, user_id) VALUES (900000, 'before'); DELETE FROM audit WHERE record_id = '900000'");
        await using var standby = await primary.StartStreamingStandbyAsync(PhysicalSlot);
        NpgsqlConnection.ClearAllPools();
        workload.ChangelogConnectionString = onPrimary;

        await using var harness = PipelineHarness.Attach(standby.ConnectionString(Database), "slot_on_standby", onPrimary);
        var options = harness.Options();
        options.PublicationName = AuditedWorkload.Publication;
        options.Tables = AuditedWorkload.Registry();
        options.HeartbeatInterval = TimeSpan.FromSeconds(1);
        // hot_standby_feedback, primary_slot_name and the primary's wal_level are as they must be.
        Assert.DoesNotContain(await WalPipeline.CheckAsync(options), w => w.StartsWith("The source is a hot standby", StringComparison.Ordinal));
        var creating = Stopwatch.StartNew();
        await harness.StartAsync(options);
        output.WriteLine($"slot created on the standby, snapshot loaded and streaming after {creating.Elapsed.TotalSeconds:F1} s");
        Assert.True(creating.Elapsed < s_slotCreation, $"creating the slot on the standby took {creating.Elapsed}");
        Assert.True(await Sql.ScalarAsync<bool>(harness.ConnectionString, "SELECT pg_is_in_recovery()"));
        Assert.Equal("user:before", await Sql.ScalarAsync<string>(onPrimary, "SELECT bucket_id FROM sync_bucket_edges WHERE record_id = '900000'"));

        var transactions = await workload.RunPgbenchAsync(seconds: 10, rate: 300);
        await workload.InsertMarkerAsync();
        await workload.WaitForMarkerAsync(() => harness.Running.IsCompleted ? harness.Running : Task.CompletedTask, TimeSpan.FromMinutes(2));
        var rows = await workload.AssertChangelogMatchesAuditAsync(minimumRows: 1000);
        output.WriteLine($"pgbench: {transactions} transactions on the primary; the changelog on the primary has {rows} rows, exactly the audit trail's");

        // The registered table idle, WAL written in another database: only heartbeats (written on the primary, in the
        // source database, decoded on the standby) move the slot and the persisted position past it.
        await Sql.ExecuteAsync(primary.ConnectionString(), "CREATE TABLE filler AS SELECT g FROM generate_series(1, 10000) g");
        var written = await OperationsSql.CurrentWalAsync(primary.ConnectionString());
        await OperationsSql.WaitUntilAsync(
            async () => await OperationsSql.SlotConfirmedAsync(harness.ConnectionString, harness.Slot) >= written
                && await OperationsSql.PersistedAsync(onPrimary, harness.Slot) >= written,
            "heartbeats to move the standby's slot past the primary's WAL", TimeSpan.FromSeconds(30), harness);
        await harness.StopAsync();
    }

    [Fact]
    public async Task On_a_standby_heartbeats_go_to_the_source_database_on_the_primary_when_the_changelog_is_another_one_and_check_names_what_is_missing()
    {
        await using var primary = await LocalPostgresServer.StartAsync(new LocalPostgresOptions { Version = Postgres17ServerFixture.VersionOf17OrNewer });
        var onPrimary = await primary.CreateDatabaseAsync(Database);
        await Sql.ExecuteAsync(onPrimary, PipelineHarness.Schema);
        var changelog = await primary.CreateDatabaseAsync("standby_changelog");
        await using var standby = await primary.StartStreamingStandbyAsync(PhysicalSlot);
        NpgsqlConnection.ClearAllPools();
        await using var harness = PipelineHarness.Attach(standby.ConnectionString(Database), "slot_heartbeats", changelog);

        // The changelog in the standby itself cannot be written.
        var inStandby = harness.Options();
        inStandby.ChangelogConnectionString = null;
        var refused = await Assert.ThrowsAsync<WalPipelineConfigurationException>(() => WalPipeline.CheckAsync(inStandby));
        Assert.Contains("Set ChangelogConnectionString", refused.Message, StringComparison.Ordinal);

        // A primary that names another database of the cluster would take heartbeats the slot never sees.
        var otherDatabase = harness.Options();
        otherDatabase.PrimaryConnectionString = changelog;
        refused = await Assert.ThrowsAsync<WalPipelineConfigurationException>(() => WalPipeline.CheckAsync(otherDatabase));
        Assert.Contains("it is another database of the cluster", refused.Message, StringComparison.Ordinal);

        // Without hot_standby_feedback the primary's vacuum may remove what the slot needs: check says so.
        await Sql.ExecuteAsync(harness.ConnectionString, "ALTER SYSTEM SET hot_standby_feedback = off");
        await Sql.ExecuteAsync(harness.ConnectionString, "SELECT pg_reload_conf()");
        await OperationsSql.WaitUntilAsync(async () => !await Sql.ScalarAsync<bool>(harness.ConnectionString, "SELECT current_setting('hot_standby_feedback')::bool"),
            "the standby to reload its configuration", TimeSpan.FromSeconds(10));
        Assert.Contains(await WalPipeline.CheckAsync(harness.Options()), w => w.Contains("hot_standby_feedback off", StringComparison.Ordinal));
        await Sql.ExecuteAsync(harness.ConnectionString, "ALTER SYSTEM RESET hot_standby_feedback");
        await Sql.ExecuteAsync(harness.ConnectionString, "SELECT pg_reload_conf()");
        await OperationsSql.WaitUntilAsync(async () => await Sql.ScalarAsync<bool>(harness.ConnectionString, "SELECT current_setting('hot_standby_feedback')::bool"),
            "the standby to reload its configuration", TimeSpan.FromSeconds(10));

        var options = harness.Options();
        options.HeartbeatInterval = TimeSpan.FromSeconds(1);
        options.InitialSnapshot = false;
        await harness.StartAsync(options);
        await Sql.ExecuteAsync(onPrimary, "INSERT INTO orders (id, user_id) VALUES (gen_random_uuid(), 'u1')");
        // The standby cannot take the harness's own heartbeat: it is written on the primary.
        await CommittedPosition.WaitUntilCommittedAsync(onPrimary, harness.Pipeline!, harness.Running);
        Assert.Single(await harness.ChangelogAsync());

        await Sql.ExecuteAsync(changelog, "CREATE TABLE filler AS SELECT g FROM generate_series(1, 10000) g");
        var written = await OperationsSql.CurrentWalAsync(primary.ConnectionString());
        await OperationsSql.WaitUntilAsync(
            async () => await OperationsSql.SlotConfirmedAsync(harness.ConnectionString, harness.Slot) >= written,
            "heartbeats to move the standby's slot past the primary's WAL", TimeSpan.FromSeconds(30), harness);
        await harness.StopAsync();
    }

    [Fact]
    public async Task PostgreSQL_15_refuses_a_standby_source_and_says_what_to_do()
    {
        await using var primary = await LocalPostgresServer.StartAsync(new LocalPostgresOptions { Version = 15 });
        var onPrimary = await primary.CreateDatabaseAsync(Database);
        await Sql.ExecuteAsync(onPrimary, PipelineHarness.Schema);
        await using var standby = await primary.StartStreamingStandbyAsync(PhysicalSlot);
        NpgsqlConnection.ClearAllPools();
        await using var harness = PipelineHarness.Attach(standby.ConnectionString(Database), "slot_on_15", onPrimary);

        var error = await Assert.ThrowsAsync<WalPipelineConfigurationException>(() => WalPipeline.CheckAsync(harness.Options()));
        Assert.Contains("PostgreSQL 15 cannot decode on a standby", error.Message, StringComparison.Ordinal);
        Assert.Contains("Point ConnectionString at the primary", error.Message, StringComparison.Ordinal);
        await using var pipeline = new WalPipeline(harness.Options());
        var run = await Assert.ThrowsAsync<WalPipelineConfigurationException>(() => pipeline.RunAsync());
        Assert.Equal(error.Message, run.Message);
    }
}
