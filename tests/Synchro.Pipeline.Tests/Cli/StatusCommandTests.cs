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

        // Nothing consumes the slot: stopped, with what it retains and the rule failure.
        var verdict = root.GetProperty("verdict");
        Assert.Equal("stopped", verdict.GetProperty("level").GetString());
        var stopped = postgres.Server.ServerVersion >= 17 ? @"slot inactive since \S+ \S+ \([^)]+\)" : "no consumer connected to the slot";
        Assert.Matches($@"^STOPPED — {stopped}, it retains [0-9.]+ (B|KiB|MiB) of WAL; 1 rule failure in sync_rule_failures \(`replay-failures`\)$", verdict.GetProperty("line").GetString());
        Assert.Equal("verdict", root.EnumerateObject().First().Name);

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
        Assert.Equal("critical", document.RootElement.GetProperty("verdict").GetProperty("level").GetString());

        Assert.True(table.ExitCode == Configuration, table.ToString());
        Assert.Matches(@"^CRITICAL — persisted position \S+ refused: `run` will not start from it; the position error says how to recover\r?\n", table.Output);
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
        Assert.Equal("stopped", document.RootElement.GetProperty("verdict").GetProperty("level").GetString());

        Assert.True(table.ExitCode == SlotMissing, table.ToString());
        Assert.StartsWith("STOPPED — slot slot_never_created does not exist; `run` creates it (the changelog starts from then)" + Environment.NewLine, table.Output, StringComparison.Ordinal);
        Assert.Contains("Slot slot_never_created on 127.0.0.1:", table.Output, StringComparison.Ordinal);
        Assert.Matches(@"(?m)^  exists +no — nothing consumes changes for it", table.Output);
        Assert.Matches(@"(?m)^  sidecar tables +missing", table.Output);
        Assert.DoesNotContain('\u001b', table.Output);
    }

    [Fact]
    public async Task A_dropped_slot_with_a_persisted_position_is_critical_and_still_exit_code_7()
    {
        var connectionString = await postgres.CreateDatabaseAsync("cli_status_dropped");
        await using (var connection = new NpgsqlConnection(connectionString))
        {
            await connection.OpenAsync();
            await ChangelogSchema.EnsureAsync(connection);
        }
        await Sql.ExecuteAsync(connectionString, "INSERT INTO sync_wal_position (slot_name, confirmed_lsn) VALUES ('slot_dropped', 0)");

        var table = await CliProcess.RunAsync("status", "--connection", connectionString, "--slot", "slot_dropped");

        Assert.True(table.ExitCode == SlotMissing, table.ToString());
        Assert.StartsWith("CRITICAL — slot slot_dropped does not exist, but the changelog has a position for it (0/0): it was dropped and the changes since are lost",
            table.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_streaming_pipeline_is_OK_a_rule_failure_makes_it_a_WARNING_watch_refreshes_until_Ctrl_C_and_a_stopped_one_is_STOPPED()
    {
        const string slot = "slot_cli_status_live";
        var connectionString = await postgres.CreateDatabaseAsync("cli_status_live");
        await Sql.ExecuteAsync(connectionString, "CREATE TABLE items (id int PRIMARY KEY, user_id text, deleted_at timestamptz); CREATE PUBLICATION status_pub FOR TABLE items");
        using var directory = new WorkingDirectory();
        var config = directory.WriteFile(JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["Synchro"] = new Dictionary<string, object>
            {
                ["ConnectionString"] = connectionString,
                ["SlotName"] = slot,
                ["PublicationName"] = "status_pub",
                ["StatusInterval"] = "1s",
                ["Tables"] = new Dictionary<string, object> { ["items"] = new Dictionary<string, object> { ["OwnerColumn"] = "user_id" } },
            },
        }), "pipeline.json");

        using (var run = CliProcess.Start(directory.Path, null, "run", "--config", config))
        {
            await CliDatabase.WaitForStreamingAsync(connectionString, slot, run);
            await Sql.ExecuteAsync(connectionString, "INSERT INTO items SELECT g, 'u' || g FROM generate_series(1, 50) g");

            var ok = await CliProcess.RunInAsync(directory.Path, null, "status", "--config", config);
            Assert.True(ok.ExitCode == 0, ok.ToString());
            Assert.Matches(@"^OK — streaming, \S+ (ms|s|min|h|B|KiB|MiB|GiB) (of WAL )?behind[^;]*, slot retains [0-9.]+ (B|KiB|MiB|GiB)\r?\n", ok.Output);

            await Sql.ExecuteAsync(connectionString, "INSERT INTO sync_rule_failures (table_name, record_id, operation, error_text) VALUES ('items', '7', 1, 'rule failed')");
            var warning = await CliProcess.RunInAsync(directory.Path, null, "status", "--json", "--config", config);
            Assert.True(warning.ExitCode == 0, warning.ToString());
            using (var json = JsonDocument.Parse(warning.Output))
            {
                var verdict = json.RootElement.GetProperty("verdict");
                Assert.Equal("warning", verdict.GetProperty("level").GetString());
                Assert.StartsWith("WARNING — 1 rule failure in sync_rule_failures (`replay-failures`); streaming, ", verdict.GetProperty("line").GetString(), StringComparison.Ordinal);
            }

            // Redirected, --watch appends one line per refresh; Ctrl+C ends it with the last status's code.
            using var watch = CliProcess.Start(directory.Path, null, "status", "--watch", "0.3", "--config", config);
            await WaitForLinesAsync(watch, 2, @"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ WARNING — 1 rule failure");
            var watched = await watch.InterruptAsync(TimeSpan.FromSeconds(30));
            Assert.True(watched.ExitCode == 0, watched.ToString());
            Assert.Equal("", watched.Error);

            Assert.Equal(0, (await run.TerminateAsync(TimeSpan.FromSeconds(30))).ExitCode);
        }

        var stopped = await CliProcess.RunInAsync(directory.Path, null, "status", "--config", config);
        Assert.True(stopped.ExitCode == 0, stopped.ToString());
        Assert.StartsWith("STOPPED — " + (postgres.Server.ServerVersion >= 17 ? "slot inactive since " : "no consumer connected to the slot, it retains "), stopped.Output, StringComparison.Ordinal);
        Assert.Contains("; 1 rule failure in sync_rule_failures", stopped.Output.Split('\n')[0], StringComparison.Ordinal);
    }

    [Fact]
    public async Task Watch_with_json_prints_one_object_per_refresh_and_exits_with_the_last_code_on_SIGTERM()
    {
        var connectionString = await postgres.CreateDatabaseAsync("cli_status_watch");
        using var directory = new WorkingDirectory();

        using var watch = CliProcess.Start(directory.Path, null, "status", "--json", "--watch", "0.2", "--connection", connectionString, "--slot", "slot_watched");
        await WaitForLinesAsync(watch, 3, "^\\{\"verdict\":\\{\"level\":\"stopped\"");
        var result = await watch.TerminateAsync(TimeSpan.FromSeconds(30));

        Assert.True(result.ExitCode == SlotMissing, result.ToString());
        var lines = result.Output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length >= 3, result.ToString());
        foreach (var line in lines)
        {
            using var json = JsonDocument.Parse(line);
            Assert.False(json.RootElement.GetProperty("slot").GetProperty("exists").GetBoolean());
        }

        var usage = await CliProcess.RunAsync("status", "--watch", "0.01", "--connection", connectionString, "--slot", "slot_watched");
        Assert.True(usage.ExitCode == 2, usage.ToString());
        Assert.Contains("--watch: '0.01' is not a number of seconds of at least 0.1", usage.Error, StringComparison.Ordinal);
    }

    /// <summary>Waits until <paramref name="process"/> has printed <paramref name="count"/> lines matching <paramref name="pattern"/>; fails if it exits first.</summary>
    private static async Task WaitForLinesAsync(CliProcess process, int count, string pattern)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (process.Output.Split('\n').Count(l => System.Text.RegularExpressions.Regex.IsMatch(l, pattern)) < count)
        {
            Assert.False(process.HasExited, $"status --watch exited:{Environment.NewLine}{process.Output}{Environment.NewLine}{process.Error}");
            Assert.True(DateTime.UtcNow < deadline, $"no {count} lines matching {pattern} in 60 s:{Environment.NewLine}{process.Output}{Environment.NewLine}{process.Error}");
            await Task.Delay(100);
        }
    }

    private static async Task<Lsn> SlotLsnAsync(string connectionString, string slot, string column)
        => Lsn.Parse(await Sql.ScalarAsync<string>(connectionString, $"SELECT {column}::text FROM pg_replication_slots WHERE slot_name = @slot", ("slot", slot)));

    private static async Task<Lsn> CurrentLsnAsync(string connectionString)
        => Lsn.Parse(await Sql.ScalarAsync<string>(connectionString, "SELECT pg_current_wal_lsn()::text"));
}
