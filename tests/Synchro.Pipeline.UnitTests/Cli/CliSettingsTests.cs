using System.Text.Json;

namespace Synchro.Pipeline.Tests.Cli;

/// <summary>
/// How the CLI reads its settings — the JSON file, then environment variables, then flags — and how it fails on bad
/// ones: exit code 3 and a message naming the setting, before any database is contacted.
/// </summary>
public sealed class CliSettingsTests
{
    private const int Usage = 2;
    private const int Configuration = 3;
    private const int Unavailable = 5;

    // Port 1 on loopback: refused at once, and never a PostgreSQL server.
    private const string Unreachable = "Host=127.0.0.1;Port=1;Username=sync;Password=hunter2;Database=app";

    private const string ValidTables = """ "Tables": { "orders": { "OwnerColumn": "user_id" } } """;

    [Fact]
    public async Task Unknown_keys_and_malformed_values_in_the_default_file_are_all_named_with_exit_code_3()
    {
        using var directory = new WorkingDirectory();
        directory.WriteFile($$"""
            { "Synchro": { "ConnectionString": "{{Unreachable}}", "SlotNmae": "s", "PublicationName": "p", "MaxBatchRows": "ten", "BatchLinger": "10", {{ValidTables}} } }
            """);

        var result = await CliProcess.RunInAsync(directory.Path, null, "run");

        Assert.True(result.ExitCode == Configuration, result.ToString());
        Assert.Contains("Synchro:SlotNmae: unknown setting; did you mean SlotName?", result.Error, StringComparison.Ordinal);
        Assert.Contains("Synchro:MaxBatchRows: 'ten' is not a whole number", result.Error, StringComparison.Ordinal);
        Assert.Contains("Synchro:BatchLinger: '10' is not a duration", result.Error, StringComparison.Ordinal);
        Assert.Contains(Path.Combine(directory.Path, "synchro-pipeline.json"), result.Error, StringComparison.Ordinal);
        Assert.DoesNotContain("hunter2", result.Error + result.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_out_of_range_value_exits_with_3_and_names_the_setting()
    {
        using var directory = new WorkingDirectory();
        var file = directory.WriteFile($$"""
            { "Synchro": { "ConnectionString": "{{Unreachable}}", "SlotName": "s", "PublicationName": "p", "MaxBatchRows": 0, {{ValidTables}} } }
            """, "pipeline.json");

        var result = await CliProcess.RunInAsync(directory.Path, null, "run", "--config", file);

        Assert.True(result.ExitCode == Configuration, result.ToString());
        Assert.Contains("MaxBatchRows is 0; it must be at least 1", result.Error, StringComparison.Ordinal);
        Assert.DoesNotContain("hunter2", result.Error + result.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Environment_variables_override_the_file_and_flags_override_both()
    {
        using var directory = new WorkingDirectory();
        directory.WriteFile($$"""
            { "Synchro": { "ConnectionString": "{{Unreachable}}", "SlotName": "Bad-File", "PublicationName": "p", {{ValidTables}} } }
            """);
        var environment = new Dictionary<string, string> { ["Synchro__SlotName"] = "Bad-Env" };

        var fromEnvironment = await CliProcess.RunInAsync(directory.Path, environment, "check");
        var fromFlag = await CliProcess.RunInAsync(directory.Path, environment, "check", "--slot", "Bad-Flag");

        Assert.True(fromEnvironment.ExitCode == Configuration, fromEnvironment.ToString());
        Assert.Contains("SlotName 'Bad-Env' is not a valid replication slot name", fromEnvironment.Error, StringComparison.Ordinal);
        Assert.True(fromFlag.ExitCode == Configuration, fromFlag.ToString());
        Assert.Contains("SlotName 'Bad-Flag' is not a valid replication slot name", fromFlag.Error, StringComparison.Ordinal);
        Assert.DoesNotContain("Bad-File", fromEnvironment.Error + fromFlag.Error, StringComparison.Ordinal);
        Assert.DoesNotContain("Bad-Env", fromFlag.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_missing_or_malformed_configuration_file_exits_with_3()
    {
        using var directory = new WorkingDirectory();
        var malformed = directory.WriteFile("""{ "Synchro": { "SlotName": "s", } """, "broken.json");

        var missing = await CliProcess.RunInAsync(directory.Path, null, "check", "--config", "nowhere.json");
        var broken = await CliProcess.RunInAsync(directory.Path, null, "check", "--config", malformed);

        Assert.True(missing.ExitCode == Configuration, missing.ToString());
        Assert.Contains($"The configuration file {Path.Combine(directory.Path, "nowhere.json")} does not exist", missing.Error, StringComparison.Ordinal);
        Assert.True(broken.ExitCode == Configuration, broken.ToString());
        Assert.Contains($"The configuration file {malformed} could not be read", broken.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_unknown_flag_exits_with_2()
    {
        var result = await CliProcess.RunAsync("run", "--slot", "s", "--no-such-flag");

        Assert.True(result.ExitCode == Usage, result.ToString());
        Assert.Contains("--no-such-flag", result.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_unreachable_database_exits_status_with_5_without_showing_the_password()
    {
        using var directory = new WorkingDirectory();
        directory.WriteFile($$"""{ "Synchro": { "PublicationName": "p", {{ValidTables}} } }""");

        var result = await CliProcess.RunInAsync(directory.Path, null, "status", "--connection", Unreachable, "--slot", "s");

        Assert.True(result.ExitCode == Unavailable, result.ToString());
        Assert.Contains("the database cannot be reached", result.Error, StringComparison.Ordinal);
        Assert.Contains("127.0.0.1:1", result.Error, StringComparison.Ordinal);
        Assert.DoesNotContain("hunter2", result.Error + result.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Run_waits_for_an_unreachable_database_logging_each_attempt_without_the_password_and_stops_cleanly_on_SIGTERM()
    {
        using var directory = new WorkingDirectory();
        directory.WriteFile($$"""{ "Synchro": { "PublicationName": "p", {{ValidTables}} } }""");

        using var run = CliProcess.Start(directory.Path, null, "run", "--connection", Unreachable, "--slot", "s");
        await WaitForAttemptsAsync(run, "[1020] Could not start, attempt 2 (Failed to connect to 127.0.0.1:1 (Connection refused)); trying again in ");
        var result = await run.TerminateAsync(TimeSpan.FromSeconds(60));

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains("synchro-pipeline run: stopped cleanly", result.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("hunter2", result.Error + result.Output, StringComparison.Ordinal);
    }

    /// <summary>Waits until the process's standard error holds <paramref name="line"/>; fails if it exits first.</summary>
    private static async Task WaitForAttemptsAsync(CliProcess run, string line)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (!run.Error.Contains(line, StringComparison.Ordinal))
        {
            Assert.False(run.HasExited, $"synchro-pipeline run exited instead of waiting: {run.Error}");
            Assert.True(DateTime.UtcNow < deadline, $"no '{line}' in 60 s: {run.Error}");
            await Task.Delay(50);
        }
    }

    [Fact]
    public async Task Json_log_format_writes_one_JSON_object_per_log_line_to_standard_error()
    {
        using var directory = new WorkingDirectory();
        directory.WriteFile($$"""{ "Synchro": { "PublicationName": "p", {{ValidTables}} } }""");

        using var run = CliProcess.Start(directory.Path, null, "run", "--log-format", "json", "--connection", Unreachable, "--slot", "s");
        await WaitForAttemptsAsync(run, "\"EventId\":1020,");
        var result = await run.TerminateAsync(TimeSpan.FromSeconds(60));

        Assert.True(result.ExitCode == 0, result.ToString());
        var events = result.Error.Split('\n').Where(line => line.StartsWith('{')).Select(line => JsonDocument.Parse(line).RootElement).ToList();
        Assert.Contains(events, e => e.GetProperty("Category").GetString() == "Synchro.Pipeline" && e.GetProperty("EventId").GetInt32() == 1000);
        Assert.Contains(events, e => e.GetProperty("EventId").GetInt32() == 1020 && e.GetProperty("State").GetProperty("Attempt").GetInt32() == 1);
        Assert.All(events, e => Assert.True(e.TryGetProperty("Timestamp", out _)));
        Assert.DoesNotContain("hunter2", result.Error, StringComparison.Ordinal);
    }
}
