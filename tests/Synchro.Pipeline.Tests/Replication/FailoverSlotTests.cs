using System.Text.Json;
using Npgsql;
using Synchro.Pipeline.LocalPostgres;
using Synchro.Pipeline.Replication;
using Synchro.Pipeline.Tests.Cli;
using Synchro.Pipeline.Tests.Infrastructure;
using Synchro.Pipeline.Tests.Pipeline;

namespace Synchro.Pipeline.Tests.Replication;

/// <summary>
/// <see cref="WalPipelineOptions.Failover"/> on a real PostgreSQL 17 primary with a streaming standby: the slot is created as a
/// failover slot, <c>check</c> says what the primary and the standby lack until the standby holds a synced copy, and the
/// options a server cannot honour are refused with their fix.
/// </summary>
public sealed class FailoverSlotTests
{
    [Fact]
    public async Task Check_names_each_missing_setting_with_its_fix_until_the_standby_holds_a_synced_copy_of_the_failover_slot()
    {
        await using var primary = await LocalPostgresServer.StartAsync(new LocalPostgresOptions { Version = Postgres17ServerFixture.VersionOf17OrNewer });
        await using var standby = await primary.StartStreamingStandbyAsync("standby_one");
        var database = await primary.CreateDatabaseAsync("failover");
        await Sql.ExecuteAsync(database, PipelineHarness.Schema);
        // check connects to the standby's copy of the database: wait until the standby has replayed its creation.
        await OperationsSql.WaitUntilAsync(
            async () => await Sql.ScalarAsync<long>(standby.ConnectionString(), "SELECT count(*) FROM pg_database WHERE datname = 'failover'") == 1,
            "the standby's copy of the database", TimeSpan.FromSeconds(30));
        // Both servers in Host, the primary chosen by its role (the standby is first, as after a failover it would be).
        var source = new NpgsqlConnectionStringBuilder(database)
        {
            Host = $"127.0.0.1:{standby.Port},127.0.0.1:{primary.Port}",
            TargetSessionAttributes = "primary",
        }.ConnectionString;
        var options = FailoverOptions(source);

        var before = await WalPipeline.CheckAsync(options);
        var standbyAt = $"Standby 127.0.0.1:{standby.Port}";
        Assert.Contains(before, w => w.StartsWith($"synchronized_standby_slots is empty on the primary 127.0.0.1:{primary.Port}", StringComparison.Ordinal)
            && w.Contains("ALTER SYSTEM SET synchronized_standby_slots", StringComparison.Ordinal) && w.Contains("physical slots: standby_one", StringComparison.Ordinal));
        Assert.Contains(before, w => w.StartsWith($"{standbyAt}: sync_replication_slots is off", StringComparison.Ordinal)
            && w.Contains("Set sync_replication_slots = on", StringComparison.Ordinal));
        // The rig's standby has the rest: hot_standby_feedback, primary_slot_name, a dbname in primary_conninfo, wal_level.
        Assert.DoesNotContain(before, w => w.Contains("hot_standby_feedback", StringComparison.Ordinal) || w.Contains("primary_slot_name", StringComparison.Ordinal)
            || w.Contains("primary_conninfo", StringComparison.Ordinal) || w.Contains("wal_level", StringComparison.Ordinal));

        // The pipeline creates the slot (through the exported snapshot) as a failover slot. It streams from the primary
        // alone: Npgsql's replication connections take one host.
        await using (var pipeline = new WalPipeline(FailoverOptions(database)))
        {
            using var stop = new CancellationTokenSource();
            var running = pipeline.RunAsync(stop.Token);
            await OperationsSql.WaitStreamingAsync(database, "failover_slot", running);
            await OperationsSql.WaitUntilAsync(() => Task.FromResult(pipeline.GetStatus().SlotFailover is not null), "a health check", TimeSpan.FromSeconds(10));
            Assert.Equal((true, false), (pipeline.GetStatus().SlotFailover, pipeline.GetStatus().SlotSynced));
            Assert.True(await Sql.ScalarAsync<bool>(database, "SELECT failover FROM pg_replication_slots WHERE slot_name = 'failover_slot'"));

            // The settings check asked for; then the standby's slot sync worker copies the slot.
            await Sql.ExecuteAsync(primary.ConnectionString(), "ALTER SYSTEM SET synchronized_standby_slots = 'standby_one'; SELECT pg_reload_conf()");
            await Sql.ExecuteAsync(standby.ConnectionString(), "ALTER SYSTEM SET sync_replication_slots = on; SELECT pg_reload_conf()");
            var onStandby = standby.ConnectionString("failover");
            for (var i = 0; i < 3; i++)
                await Sql.ExecuteAsync(database, $"INSERT INTO orders (id, user_id) VALUES ('{Guid.NewGuid()}', 'alice')");
            await OperationsSql.WaitUntilAsync(
                async () => await Sql.ScalarAsync<long>(onStandby, "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'failover_slot' AND synced AND NOT temporary") == 1,
                "the standby's synced copy of the slot", TimeSpan.FromSeconds(90));

            await stop.CancelAsync();
            await running;
        }

        // Checked with the slot idle (check refuses a slot in use), the standby named on its own: with a persisted position
        // check opens a replication connection, which takes one host.
        var named = FailoverOptions(database);
        named.FailoverStandbys.Add(standby.ConnectionString("failover"));
        var after = await WalPipeline.CheckAsync(named);
        Assert.DoesNotContain(after, w => w.Contains("synchronized_standby_slots", StringComparison.Ordinal) || w.StartsWith("Standby", StringComparison.Ordinal)
            || w.StartsWith("No standby", StringComparison.Ordinal));

        // status on the standby shows its copy: a failover slot, synced.
        var status = await CliProcess.RunAsync("status", "--json", "--connection", standby.ConnectionString("failover"), "--slot", "failover_slot");
        using (var json = JsonDocument.Parse(status.Output))
        {
            var slot = json.RootElement.GetProperty("slot");
            Assert.True(slot.GetProperty("failover").GetBoolean(), status.ToString());
            Assert.True(slot.GetProperty("synced").GetBoolean(), status.ToString());
        }
    }

    private static WalPipelineOptions FailoverOptions(string connectionString) => new()
    {
        ConnectionString = connectionString,
        SlotName = "failover_slot",
        PublicationName = PipelineHarness.Publication,
        Tables = PipelineHarness.Registry(),
        Failover = true,
        StatusInterval = TimeSpan.FromMilliseconds(200),
        SlotHealthInterval = TimeSpan.FromMilliseconds(200),
    };

    [Fact]
    public async Task An_existing_slot_without_failover_is_refused_with_the_alter_command_that_fixes_it()
    {
        await using var server = await LocalPostgresServer.StartAsync(new LocalPostgresOptions { Version = Postgres17ServerFixture.VersionOf17OrNewer });
        var database = await server.CreateDatabaseAsync("plain_slot");
        await Sql.ExecuteAsync(database, PipelineHarness.Schema);
        Assert.True(await ReplicationSlots.CreateIfMissingAsync(database, "plain_slot", twoPhase: false, CancellationToken.None));
        var options = new WalPipelineOptions
        {
            ConnectionString = database,
            SlotName = "plain_slot",
            PublicationName = PipelineHarness.Publication,
            Tables = PipelineHarness.Registry(),
            Failover = true,
        };

        var error = await Assert.ThrowsAsync<WalPipelineConfigurationException>(() => WalPipeline.CheckAsync(options));
        var message = Assert.Single(error.Errors);
        Assert.StartsWith("Replication slot 'plain_slot' is no failover slot, and Failover is on", message, StringComparison.Ordinal);
        const string alter = "ALTER_REPLICATION_SLOT plain_slot (FAILOVER true)";
        Assert.Contains($"psql \"dbname=plain_slot replication=database\" -c '{alter}'", message, StringComparison.Ordinal);

        // The fix as printed, with psql's connection details.
        var (exitCode, output) = await ProgramRunner.RunAsync(
            server.ClientProgram("psql"), ["-X", "-v", "ON_ERROR_STOP=1", $"host=127.0.0.1 port={server.Port} user=postgres password={new NpgsqlConnectionStringBuilder(database).Password} dbname=plain_slot replication=database", "-c", alter],
            workingDirectory: null, TimeSpan.FromSeconds(30), CancellationToken.None);
        Assert.True(exitCode == 0, output);
        Assert.True(await Sql.ScalarAsync<bool>(database, "SELECT failover FROM pg_replication_slots WHERE slot_name = 'plain_slot'"));
        await WalPipeline.CheckAsync(options);

        // Created without the exported snapshot, through SQL, the slot is a failover slot too.
        Assert.True(await ReplicationSlots.CreateIfMissingAsync(database, "sql_slot", twoPhase: false, failover: true, CancellationToken.None));
        Assert.True(await Sql.ScalarAsync<bool>(database, "SELECT failover FROM pg_replication_slots WHERE slot_name = 'sql_slot'"));
    }

    [Fact]
    public async Task Failover_on_postgresql_15_is_a_configuration_error_naming_the_version()
    {
        await using var server = await LocalPostgresServer.StartAsync(new LocalPostgresOptions { Version = 15 });
        var database = await server.CreateDatabaseAsync("failover_15");
        await Sql.ExecuteAsync(database, PipelineHarness.Schema);
        var options = new WalPipelineOptions
        {
            ConnectionString = database,
            SlotName = "failover_slot",
            PublicationName = PipelineHarness.Publication,
            Tables = PipelineHarness.Registry(),
            Failover = true,
        };

        var error = await Assert.ThrowsAsync<WalPipelineConfigurationException>(() => WalPipeline.CheckAsync(options));

        Assert.Equal(
            $"Failover is on, but the source is PostgreSQL {server.ServerVersion}: failover slots need PostgreSQL 17 or later. Turn Failover off, or upgrade the source server.",
            Assert.Single(error.Errors));
    }
}
