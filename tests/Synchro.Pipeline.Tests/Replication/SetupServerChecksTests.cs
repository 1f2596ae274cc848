using Npgsql;
using Npgsql.Replication;
using Synchro.Pipeline.LocalPostgres;
using Synchro.Pipeline.Replication;
using Synchro.Pipeline.Tests.Infrastructure;
using Synchro.Pipeline.Tests.Pipeline;

namespace Synchro.Pipeline.Tests.Replication;

/// <summary>
/// The server checks of docs/setup.md on servers of their own: no free replication slot, no free walsender, and a managed
/// service (Amazon RDS, told by its <c>rds.logical_replication</c> setting, defined here as a custom setting in postgresql.conf)
/// whose fixes are its parameter group and <c>rds_replication</c>, not <c>ALTER SYSTEM</c> and <c>ALTER ROLE</c>.
/// </summary>
[Trait(TestCategories.Name, TestCategories.VersionSensitive)]
public sealed class SetupServerChecksTests
{
    private static readonly RegisteredTable[] s_items = [new("public", "items", "id", ["id", "owner_id"])];

    [Fact]
    public async Task No_free_slot_or_walsender_is_named_with_the_setting_to_raise_and_the_slots_to_drop()
    {
        await using var server = await LocalPostgresServer.StartAsync(new LocalPostgresOptions
        {
            Settings = { ["max_replication_slots"] = "2", ["max_wal_senders"] = "2" },
        });
        var database = await PrepareAsync(server);
        await Sql.ExecuteAsync(database, "SELECT pg_create_logical_replication_slot('other_a', 'pgoutput'); SELECT pg_create_physical_replication_slot('other_b');");

        // Both slots are taken by others; the pipeline's own would be a third.
        var full = await CheckAsync(database, "synchro_slot");
        Assert.Equal(
            "No replication slot is free for the pipeline's slot: max_replication_slots = 2, and the server has 2 slots (every database's, physical ones too). "
            + "Raise it: run ALTER SYSTEM SET max_replication_slots = 3 as a superuser, then restart the server; or drop a slot nothing uses "
            + "(inactive now: 'other_a', 'other_b') with SELECT pg_drop_replication_slot('<name>').",
            Assert.Single(full.Errors));
        // A slot of the pipeline's name that exists already needs no free one (it is another plugin's slot here: that is its only error).
        var existing = await CheckAsync(database, "other_b");
        Assert.DoesNotContain(existing.Errors, e => e.Contains("max_replication_slots", StringComparison.Ordinal));

        // Two replication connections hold both walsenders.
        await Sql.ExecuteAsync(database, "SELECT pg_drop_replication_slot('other_b')");
        await using var first = new LogicalReplicationConnection(database);
        await first.Open();
        await using var second = new LogicalReplicationConnection(database);
        await second.Open();
        const string senders = "No walsender is free for the pipeline's replication connection: max_wal_senders = 2, and the server runs 2 walsenders "
            + "(SELECT pid, application_name, client_addr FROM pg_stat_replication lists them). "
            + "Raise it: run ALTER SYSTEM SET max_wal_senders = 3 as a superuser, then restart the server; or stop a replication client that is no longer needed.";
        // check: an error; a start: a warning, and the start waits for a walsender as for a server out of connections.
        Assert.Equal(senders, Assert.Single((await CheckAsync(database, "synchro_slot")).Errors));
        await using var connection = new NpgsqlConnection(database);
        var start = await StartupChecks.RunAsync(connection, "synchro_slot", "sync_pub", s_items, busySendersFail: false, CancellationToken.None);
        Assert.Contains(senders + " Meanwhile the pipeline waits for one, as for a server out of connections.", start.Warnings);

        await second.DisposeAsync();
        await WaitForSendersAsync(database, 1);
        await StartupChecks.RunAsync(connection, "synchro_slot", "sync_pub", s_items, busySendersFail: true, CancellationToken.None);
    }

    [Fact]
    public async Task On_amazon_rds_the_fixes_are_the_parameter_group_and_rds_replication()
    {
        // What RDS shows before logical replication is turned on: its own setting off, wal_level replica.
        await using var server = await LocalPostgresServer.StartAsync(new LocalPostgresOptions
        {
            Settings = { ["wal_level"] = "replica", ["rds.logical_replication"] = "off", ["max_replication_slots"] = "1" },
        });
        var database = await PrepareAsync(server);
        await Sql.ExecuteAsync(database, $"""
            CREATE ROLE app_sync LOGIN PASSWORD '{PipelineRoles.Password}';
            GRANT SELECT ON items TO app_sync;
            CREATE ROLE rds_replication NOLOGIN;
            CREATE ROLE app_granted LOGIN PASSWORD '{PipelineRoles.Password}' IN ROLE rds_replication;
            GRANT SELECT ON items TO app_granted;
            SELECT pg_create_physical_replication_slot('standby_1');
            """);

        var plain = await CheckAsync(As(database, "app_sync"), "synchro_slot");
        Assert.Equal(
        [
            "wal_level is 'replica', and logical decoding needs wal_level = logical: this is Amazon RDS or Aurora, where ALTER SYSTEM is not allowed: "
                + "set rds.logical_replication = 1 in the instance's custom DB parameter group (Aurora: the DB cluster parameter group), then reboot the instance "
                + "(Aurora: the writer); wal_level is logical after the reboot.",
            "Role \"app_sync\" may not replicate: it has neither the REPLICATION attribute nor superuser, and is no member of rds_replication, so it can neither "
                + "create the slot nor stream from it. Grant it, as the master user (a member of rds_superuser): GRANT rds_replication TO \"app_sync\";",
            "No replication slot is free for the pipeline's slot: max_replication_slots = 1, and the server has 1 slot (every database's, physical ones too). "
                + "Raise it: set max_replication_slots = 2 in the DB parameter group (Aurora: the DB cluster parameter group), then reboot; or drop a slot nothing uses "
                + "(inactive now: 'standby_1') with SELECT pg_drop_replication_slot('<name>').",
        ], plain.Errors);

        // A member of rds_replication may replicate there.
        var granted = await CheckAsync(As(database, "app_granted"), "synchro_slot");
        Assert.DoesNotContain(granted.Errors, e => e.Contains("may not replicate", StringComparison.Ordinal));
        Assert.Equal(2, granted.Errors.Count);
    }

    private static async Task<WalPipelineConfigurationException> CheckAsync(string database, string slot)
    {
        await using var connection = new NpgsqlConnection(database);
        return await Assert.ThrowsAsync<WalPipelineConfigurationException>(
            () => StartupChecks.RunAsync(connection, slot, "sync_pub", s_items, busySendersFail: true, CancellationToken.None));
    }

    private static string As(string connectionString, string role) => PipelineRoles.As(connectionString, role);

    /// <summary>A walsender whose client left ends a moment later: waits until the server counts <paramref name="count"/>.</summary>
    private static async Task WaitForSendersAsync(string database, int count)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (await Sql.ScalarAsync<long>(database, "SELECT count(*) FROM pg_stat_get_wal_senders()") != count)
        {
            Assert.True(DateTime.UtcNow < deadline, $"the server still counts more than {count} walsender(s) after 30 s");
            await Task.Delay(50);
        }
    }

    private static async Task<string> PrepareAsync(LocalPostgresServer server)
    {
        var database = await server.CreateDatabaseAsync("setup");
        await Sql.ExecuteAsync(database, "CREATE TABLE items (id bigint PRIMARY KEY, owner_id text)");
        await Sql.ExecuteAsync(database, "CREATE PUBLICATION sync_pub FOR TABLE items");
        return database;
    }
}
