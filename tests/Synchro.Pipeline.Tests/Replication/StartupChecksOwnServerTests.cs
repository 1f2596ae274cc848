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
    public async Task A_wal_level_other_than_logical_is_an_error_that_says_how_to_change_it()
    {
        await using var server = await LocalPostgresServer.StartAsync(new LocalPostgresOptions { Settings = { ["wal_level"] = "replica" } });
        var database = await PrepareAsync(server);

        await using var connection = new NpgsqlConnection(database);
        await connection.OpenAsync();
        var error = await Assert.ThrowsAsync<WalPipelineConfigurationException>(
            () => StartupChecks.RunAsync(connection, "synchro_slot", "sync_pub", s_items, busySendersFail: true, CancellationToken.None));

        var message = Assert.Single(error.Errors);
        Assert.Equal(
            "wal_level is 'replica'; set wal_level = logical in postgresql.conf (or ALTER SYSTEM SET wal_level = logical) and restart the server",
            message);
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

    private static async Task<string> PrepareAsync(LocalPostgresServer server)
    {
        var database = await server.CreateDatabaseAsync("checks");
        await Sql.ExecuteAsync(database, "CREATE TABLE items (id bigint PRIMARY KEY, owner_id text)");
        await Sql.ExecuteAsync(database, "CREATE PUBLICATION sync_pub FOR TABLE items");
        return database;
    }
}
