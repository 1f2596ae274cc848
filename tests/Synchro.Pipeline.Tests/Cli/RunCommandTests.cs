using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using Npgsql;
using Synchro.Pipeline.Protocol;
using Synchro.Pipeline.Tests.Infrastructure;
using Synchro.Pipeline.Tests.Pipeline;

namespace Synchro.Pipeline.Tests.Cli;

/// <summary>
/// <c>synchro-pipeline run</c> as a service runs it: settings from a file, one table setting from the environment and
/// the slot from a flag; a pgbench workload consumed into the changelog exactly as its audit trail says; SIGTERM stops
/// it with exit code 0, and the position it reports is the one persisted.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed partial class RunCommandTests(PostgresServerFixture postgres)
{
    private const string Slot = "slot_cli_run";

    [Fact]
    public async Task Run_consumes_a_workload_and_stops_cleanly_on_SIGTERM_with_the_committed_position_persisted()
    {
        var connectionString = await postgres.CreateDatabaseAsync("cli_run");
        // The server's password, which the connection string in the file carries: it must appear in no output.
        var password = new NpgsqlConnectionStringBuilder(connectionString).Password;
        Assert.False(string.IsNullOrEmpty(password));
        // Over-long owners and a bucket the changelog refuses: the run's writer (socket completions inline) isolates refused changes.
        using var workload = await AuditedWorkload.CreateAsync(postgres.Server, connectionString, refusedBucket: "user:u8");
        using var directory = new WorkingDirectory();
        // The file's slot is overridden by --slot, and its owner column (which does not exist) by the environment.
        var config = directory.WriteFile(JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["Synchro"] = new Dictionary<string, object>
            {
                ["ConnectionString"] = connectionString,
                ["SlotName"] = "slot_from_file",
                ["PublicationName"] = AuditedWorkload.Publication,
                ["MaxBatchRows"] = 50,
                ["BatchLinger"] = "5ms",
                ["StatusInterval"] = "1s",
                ["Tables"] = new Dictionary<string, object> { [AuditedWorkload.Table] = new Dictionary<string, object> { ["OwnerColumn"] = "no_such_column" } },
            },
        }), "pipeline.json");
        var environment = new Dictionary<string, string> { [$"Synchro__Tables__{AuditedWorkload.Table}__OwnerColumn"] = AuditedWorkload.OwnerColumn };

        CliResult result;
        using (var run = CliProcess.Start(directory.Path, environment, "run", "--config", config, "--slot", Slot))
        {
            await CliDatabase.WaitForStreamingAsync(connectionString, Slot, run);
            await workload.RunPgbenchAsync(seconds: 4, rate: 150);
            await workload.InsertMarkerAsync();
            await workload.WaitForMarkerAsync(
                () => run.HasExited ? throw new InvalidOperationException($"synchro-pipeline exited: {run.Error}") : Task.CompletedTask,
                TimeSpan.FromMinutes(2));

            result = await run.TerminateAsync(TimeSpan.FromSeconds(30));
        }

        Assert.True(result.ExitCode == 0, result.ToString());
        var changelogRows = await workload.AssertChangelogMatchesAuditAsync(minimumRows: 200);

        var summary = SummaryPattern().Match(result.Output);
        Assert.True(summary.Success, $"no summary line in: {result.Output}");
        Assert.Equal(await workload.ScalarAsync<long>("SELECT count(*) FROM audit"), long.Parse(summary.Groups["changes"].Value, CultureInfo.InvariantCulture));
        Assert.Equal((long)changelogRows, long.Parse(summary.Groups["rows"].Value, CultureInfo.InvariantCulture));
        var persisted = new Lsn(unchecked((ulong)await Sql.ScalarAsync<long>(connectionString, "SELECT confirmed_lsn FROM sync_wal_position WHERE slot_name = @slot", ("slot", Slot))));
        Assert.Equal(Lsn.Parse(summary.Groups["position"].Value, CultureInfo.InvariantCulture), persisted);
        Assert.True(persisted > Lsn.Invalid);

        Assert.False(await Sql.ScalarAsync<bool>(connectionString, "SELECT EXISTS (SELECT FROM pg_replication_slots WHERE slot_name = 'slot_from_file')"));
        Assert.Contains($"Starting: slot {Slot}", result.Error, StringComparison.Ordinal);
        Assert.DoesNotContain(password, result.Output + result.Error, StringComparison.Ordinal);
        Assert.DoesNotContain('\u001b', result.Output + result.Error);

        // What an operator runs next: the status shows the stopped pipeline's slot and the same persisted position.
        var status = await CliProcess.RunInAsync(directory.Path, environment, "status", "--json", "--config", config, "--slot", Slot);
        Assert.True(status.ExitCode == 0, status.ToString());
        using var json = JsonDocument.Parse(status.Output);
        Assert.True(json.RootElement.GetProperty("slot").GetProperty("exists").GetBoolean());
        Assert.Equal(persisted.ToString(), json.RootElement.GetProperty("changelog").GetProperty("persisted_lsn").GetString());
        Assert.Equal(await workload.ScalarAsync<long>("SELECT count(*) FROM sync_rule_failures"), json.RootElement.GetProperty("changelog").GetProperty("rule_failures").GetInt64());
    }

    [GeneratedRegex(@"^synchro-pipeline run: stopped cleanly; (?<changes>\d+) changes committed .*, (?<rows>\d+) changelog rows, .*; position (?<position>[0-9A-F]+/[0-9A-F]+)$", RegexOptions.Multiline)]
    private static partial Regex SummaryPattern();
}
