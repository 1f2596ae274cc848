using Npgsql;
using Synchro.Pipeline.LocalPostgres;
using Synchro.Pipeline.Replication;

using Synchro.Pipeline.Tests.Infrastructure;

namespace Synchro.Pipeline.Tests.Replication;

/// <summary>Checks that need server settings the shared test server must not have; each test starts its own server.</summary>
[Trait(TestCategories.Name, TestCategories.VersionSensitive)]
public sealed class StartupChecksOwnServerTests
{
    private static readonly RegisteredTable[] s_items = [new("public", "items", "id", ["id", "owner_id"])];

    [Fact]
    public async Task A_wal_level_other_than_logical_is_an_error_whose_fix_is_the_servers_own_way_to_change_it()
    {
        await using var server = await LocalPostgresServer.StartAsync(new LocalPostgresOptions { Settings = { ["wal_level"] = "replica" } });
        var database = await PrepareAsync(server);
        // Cloud SQL and Azure are told by settings only they define; here each is a custom setting of a database of its own.
        var cloudSql = await PrepareAsync(server, "checks_cloudsql", "cloudsql.logical_decoding", "off");
        var azure = await PrepareAsync(server, "checks_azure", "azure.extensions", "");

        const string Needs = "wal_level is 'replica', and logical decoding needs wal_level = logical: ";
        Assert.Equal(Needs + "run ALTER SYSTEM SET wal_level = logical (or set it in postgresql.conf) as a superuser, then restart the server.",
            await WalLevelErrorAsync(database));
        Assert.Equal(Needs + "this is Google Cloud SQL, where ALTER SYSTEM is not allowed: set the database flag cloudsql.logical_decoding = on "
            + "(console: Edit, Flags; gcloud sql instances patch INSTANCE --database-flags=..., which replaces every flag, so list the existing ones too), then restart the instance.",
            await WalLevelErrorAsync(cloudSql));
        Assert.Equal(Needs + "this is Azure Database for PostgreSQL flexible server, where ALTER SYSTEM is not allowed: set the server parameter wal_level = logical "
            + "(portal: Server parameters; or az postgres flexible-server parameter set --resource-group RG --server-name SERVER --name wal_level --value logical), then restart the server.",
            await WalLevelErrorAsync(azure));
    }

    private static async Task<string> WalLevelErrorAsync(string database)
    {
        await using var connection = new NpgsqlConnection(database);
        await connection.OpenAsync();
        var error = await Assert.ThrowsAsync<WalPipelineConfigurationException>(
            () => StartupChecks.RunAsync(connection, "synchro_slot", "sync_pub", s_items, busySendersFail: true, CancellationToken.None));
        return Assert.Single(error.Errors);
    }

    [Fact]
    public async Task A_slot_invalidated_for_lack_of_wal_is_an_error()
    {
        // The slot may hold back no WAL beyond the current segment, so the next checkpoint invalidates it.
        await using var server = await LocalPostgresServer.StartAsync(new LocalPostgresOptions { Settings = { ["max_slot_wal_keep_size"] = "1MB" } });
        var database = await PrepareAsync(server);
        Assert.True(await ReplicationSlots.CreateIfMissingAsync(database, "lost_slot", twoPhase: false, CancellationToken.None));
        for (var i = 0; i < 3; i++)
        {
            await Sql.ExecuteAsync(database, "INSERT INTO items VALUES (" + i + ", 'a')");
            await Sql.ScalarAsync<object>(database, "SELECT pg_switch_wal()");
        }

        await Sql.ExecuteAsync(database, "CHECKPOINT");
        Assert.Equal("lost", await Sql.ScalarAsync<string>(database, "SELECT wal_status FROM pg_replication_slots WHERE slot_name = 'lost_slot'"));

        await using var connection = new NpgsqlConnection(database);
        await connection.OpenAsync();
        var error = await Assert.ThrowsAsync<WalPipelineConfigurationException>(
            () => StartupChecks.RunAsync(connection, "lost_slot", "sync_pub", s_items, busySendersFail: true, CancellationToken.None));

        var message = Assert.Single(error.Errors);
        // 17 and later name the reason; before, wal_status 'lost' is all there is.
        var observed = server.ServerVersion >= 17 ? "invalidation_reason 'wal_removed'" : "wal_status 'lost'";
        Assert.StartsWith($"Replication slot 'lost_slot' was invalidated by the server ({observed}): ", message, StringComparison.Ordinal);
        Assert.Contains("raise max_slot_wal_keep_size", message, StringComparison.Ordinal);
        Assert.Contains("SELECT pg_drop_replication_slot('lost_slot')", message, StringComparison.Ordinal);
    }

    private static async Task<string> PrepareAsync(LocalPostgresServer server, string name = "checks", string? setting = null, string? value = null)
    {
        var database = await server.CreateDatabaseAsync(name);
        if (setting is not null)
            await Sql.ExecuteAsync(database, $"ALTER DATABASE {name} SET \"{setting}\" = '{value}'");
        await Sql.ExecuteAsync(database, "CREATE TABLE items (id bigint PRIMARY KEY, owner_id text)");
        await Sql.ExecuteAsync(database, "CREATE PUBLICATION sync_pub FOR TABLE items");
        return database;
    }
}
