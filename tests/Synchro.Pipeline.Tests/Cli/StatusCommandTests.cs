using System.Text.Json;
using Npgsql;
using Synchro.Pipeline.Changelog;
using Synchro.Pipeline.Protocol;
using Synchro.Pipeline.Tests.Infrastructure;

namespace Synchro.Pipeline.Tests.Cli;

/// <summary><c>synchro-pipeline status</c> against a real slot: its JSON for scripts, its table for people, and the exit code for a missing slot.</summary>
[Collection(PostgresCollection.Name)]
[Trait(TestCategories.Name, TestCategories.VersionSensitive)]
public sealed class StatusCommandTests(PostgresServerFixture postgres)
{
    private const int Configuration = 3;
    private const int SlotMissing = 7;

    [Fact]
    public async Task Json_shows_the_slot_its_positions_and_lag_and_the_persisted_position()
    {
        const string slot = "slot_cli_status";
        var connectionString = await postgres.CreateDatabaseAsync("cli_status");
        await Sql.ExecuteAsync(connectionString, "CREATE TABLE items (id int PRIMARY KEY, user_id text)");
        await Sql.ExecuteAsync(connectionString, $"SELECT pg_create_logical_replication_slot('{slot}', 'pgoutput')");
        await using (var connection = new NpgsqlConnection(connectionString))
        {
            await connection.OpenAsync();
            await ChangelogSchema.EnsureAsync(connection);
        }
        // WAL the slot has not confirmed, a persisted position 16 bytes past its confirmed_flush_lsn, changelog rows, a rule failure.
        await Sql.ExecuteAsync(connectionString, "INSERT INTO items SELECT g, 'u' || g FROM generate_series(1, 500) g");
        await Sql.ExecuteAsync(connectionString, $"""
            INSERT INTO sync_wal_position (slot_name, confirmed_lsn)
                SELECT slot_name, (confirmed_flush_lsn - '0/0'::pg_lsn)::bigint + 16 FROM pg_replication_slots WHERE slot_name = '{slot}';
            INSERT INTO sync_changelog (bucket_id, table_name, record_id, operation) VALUES ('user:1', 'items', '1', 1), ('user:2', 'items', '2', 1);
            INSERT INTO sync_rule_failures (table_name, record_id, operation, error_text) VALUES ('items', '3', 1, 'rule failed');
            """);
        var (confirmed, restart) = (await SlotLsnAsync(connectionString, slot, "confirmed_flush_lsn"), await SlotLsnAsync(connectionString, slot, "restart_lsn"));
        var before = await CurrentLsnAsync(connectionString);

        var result = await CliProcess.RunAsync("status", "--json", "--connection", connectionString, "--slot", slot);

        var after = await CurrentLsnAsync(connectionString);
        Assert.True(result.ExitCode == 0, result.ToString());
        using var json = JsonDocument.Parse(result.Output);
        var root = json.RootElement;
        Assert.Equal(slot, root.GetProperty("slot_name").GetString());
        var server = Lsn.Parse(root.GetProperty("server_wal_lsn").GetString()!);
        // Other tests write WAL on the shared server meanwhile: the current position is read between these two.
        Assert.InRange(server, before, after);
        Assert.False(root.GetProperty("in_recovery").GetBoolean());

        var slotJson = root.GetProperty("slot");
        Assert.True(slotJson.GetProperty("exists").GetBoolean());
        Assert.Equal("logical", slotJson.GetProperty("slot_type").GetString());
        Assert.Equal("pgoutput", slotJson.GetProperty("plugin").GetString());
        Assert.False(slotJson.GetProperty("active").GetBoolean());
        Assert.Equal(JsonValueKind.Null, slotJson.GetProperty("active_pid").ValueKind);
        Assert.Equal("reserved", slotJson.GetProperty("wal_status").GetString());
        Assert.False(slotJson.GetProperty("two_phase").GetBoolean());
        Assert.Equal(confirmed.ToString(), slotJson.GetProperty("confirmed_flush_lsn").GetString());
        Assert.Equal(restart.ToString(), slotJson.GetProperty("restart_lsn").GetString());
        var lag = slotJson.GetProperty("lag_bytes").GetInt64();
        Assert.Equal(server - confirmed, lag);
        Assert.True(lag > 500 * 50, $"500 inserted rows are more WAL than {lag} bytes");
        Assert.Equal(server - restart, slotJson.GetProperty("retained_wal_bytes").GetInt64());

        var changelog = root.GetProperty("changelog");
        Assert.True(changelog.GetProperty("tables_exist").GetBoolean());
        Assert.Equal((confirmed + 16).ToString(), changelog.GetProperty("persisted_lsn").GetString());
        Assert.Equal(16, changelog.GetProperty("persisted_ahead_of_slot_bytes").GetInt64());
        Assert.Equal(2, changelog.GetProperty("last_seq").GetInt64());
        Assert.True(changelog.GetProperty("total_bytes").GetInt64() > 0);
        Assert.Equal(1, changelog.GetProperty("rule_failures").GetInt64());
        Assert.Equal(JsonValueKind.String, changelog.GetProperty("last_rule_failure_at").ValueKind);
    }

    [Fact]
    public async Task A_position_the_server_has_not_written_is_an_error_with_its_recovery_not_lag()
    {
        const string slot = "slot_cli_status_ahead";
        var connectionString = await postgres.CreateDatabaseAsync("cli_status_ahead");
        await Sql.ExecuteAsync(connectionString, $"SELECT pg_create_logical_replication_slot('{slot}', 'pgoutput')");
        await using (var connection = new NpgsqlConnection(connectionString))
        {
            await connection.OpenAsync();
            await ChangelogSchema.EnsureAsync(connection);
        }
        // What a changelog restored from a later backup leaves: a position 1 GiB past the server's WAL.
        await Sql.ExecuteAsync(connectionString, $"INSERT INTO sync_wal_position (slot_name, confirmed_lsn) SELECT '{slot}', (pg_current_wal_flush_lsn() - '0/0')::bigint + 1073741824");

        var json = await CliProcess.RunAsync("status", "--json", "--connection", connectionString, "--slot", slot);
        var table = await CliProcess.RunAsync("status", "--connection", connectionString, "--slot", slot);

        Assert.True(json.ExitCode == Configuration, json.ToString());
        using var document = JsonDocument.Parse(json.Output);
        var problem = Assert.Single(document.RootElement.GetProperty("changelog").GetProperty("position_problems").EnumerateArray()).GetString()!;
        Assert.Contains("is ahead of everything this server has written", problem, StringComparison.Ordinal);
        Assert.Contains($"DELETE FROM sync_wal_position WHERE slot_name = '{slot}'", problem, StringComparison.Ordinal);
        Assert.Equal(JsonValueKind.Null, document.RootElement.GetProperty("changelog").GetProperty("position_unchecked").ValueKind);

        Assert.True(table.ExitCode == Configuration, table.ToString());
        Assert.Matches(@"(?m)^  persisted position +\S+ at .*; refused — `run` will not start from it", table.Output);
        Assert.Matches(@"(?m)^  position error +The persisted position \S+ of slot 'slot_cli_status_ahead' is ahead of everything", table.Output);
        Assert.DoesNotContain("confirmed at the next status update", table.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_missing_slot_is_reported_with_exit_code_7_as_json_and_as_plain_lines()
    {
        var connectionString = await postgres.CreateDatabaseAsync("cli_status_missing");

        var json = await CliProcess.RunAsync("status", "--json", "--connection", connectionString, "--slot", "slot_never_created");
        var table = await CliProcess.RunAsync("status", "--connection", connectionString, "--slot", "slot_never_created");

        Assert.True(json.ExitCode == SlotMissing, json.ToString());
        using var document = JsonDocument.Parse(json.Output);
        Assert.False(document.RootElement.GetProperty("slot").GetProperty("exists").GetBoolean());
        Assert.Equal(JsonValueKind.Null, document.RootElement.GetProperty("slot").GetProperty("confirmed_flush_lsn").ValueKind);
        Assert.False(document.RootElement.GetProperty("changelog").GetProperty("tables_exist").GetBoolean());
        Assert.Equal(3, document.RootElement.GetProperty("changelog").GetProperty("missing_tables").GetArrayLength());

        Assert.True(table.ExitCode == SlotMissing, table.ToString());
        Assert.Contains("Slot slot_never_created on 127.0.0.1:", table.Output, StringComparison.Ordinal);
        Assert.Matches(@"(?m)^  exists +no — nothing consumes changes for it", table.Output);
        Assert.Matches(@"(?m)^  sidecar tables +missing", table.Output);
        Assert.DoesNotContain('\u001b', table.Output);
    }

    private static async Task<Lsn> SlotLsnAsync(string connectionString, string slot, string column)
        => Lsn.Parse(await Sql.ScalarAsync<string>(connectionString, $"SELECT {column}::text FROM pg_replication_slots WHERE slot_name = @slot", ("slot", slot)));

    private static async Task<Lsn> CurrentLsnAsync(string connectionString)
        => Lsn.Parse(await Sql.ScalarAsync<string>(connectionString, "SELECT pg_current_wal_lsn()::text"));
}
