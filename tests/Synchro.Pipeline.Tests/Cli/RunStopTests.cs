using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Synchro.Pipeline.Tests.Infrastructure;
using Synchro.Pipeline.Tests.Pipeline;
using Xunit.Abstractions;

namespace Synchro.Pipeline.Tests.Cli;

/// <summary>
/// <c>synchro-pipeline run</c> stopped as a service manager stops it, SIGTERM, measured from the signal to the process's
/// exit: promptly when idle, and under pgbench load once its batch in flight is written; and started again at once, many
/// times, with the changelog exactly what the audit trail says.
/// </summary>
/// <remarks>
/// The CLI runs socket completions inline, where Npgsql's own cancellation of the replication stream used to deadlock
/// with the socket thread until its 15 s cancel-connection timeout (about one stop in two on an idle run).
/// </remarks>
[Collection(PostgresCollection.Name)]
public sealed class RunStopTests(PostgresServerFixture postgres, ITestOutputHelper output)
{
    // The stop's target is 2 s; the margin is for a loaded 2-core machine (the figures are printed).
    private static readonly TimeSpan s_idleStopLimit = TimeSpan.FromSeconds(4);

    // Under load: 2 s plus the batch in flight, which the stop's grace (5 s) bounds.
    private static readonly TimeSpan s_loadedStopLimit = TimeSpan.FromSeconds(2) + TimeSpan.FromSeconds(5) + TimeSpan.FromSeconds(2);

    [Fact]
    public async Task SIGTERM_stops_an_idle_run_within_2_s_with_exit_code_0()
    {
        const string slot = "slot_cli_idle_stop";
        var connectionString = await postgres.CreateDatabaseAsync("cli_idle_stop");
        using var workload = await AuditedWorkload.CreateAsync(postgres.Server, connectionString);
        using var directory = new WorkingDirectory();
        var config = WriteConfig(directory, connectionString, slot);

        var stops = new List<TimeSpan>();
        for (var i = 0; i < 5; i++)
        {
            using var run = CliProcess.Start(directory.Path, null, "run", "--config", config);
            await CliDatabase.WaitForStreamingAsync(connectionString, slot, run);
            // Idle, with a heartbeat written and confirmed every second meanwhile.
            await Task.Delay(TimeSpan.FromSeconds(2.5));
            var (result, took) = await StopAsync(run);
            AssertStoppedCleanly(result);
            stops.Add(took);
        }

        output.WriteLine($"idle stops (SIGTERM to exit): {Describe(stops)}");
        Assert.True(stops.Max() < s_idleStopLimit, $"an idle stop took {stops.Max().TotalSeconds:F2} s: {Describe(stops)}");
    }

    [Fact]
    public async Task Twenty_stop_start_cycles_under_pgbench_each_stop_prompt_and_the_changelog_is_exactly_the_audit_trail()
    {
        const string slot = "slot_cli_cycles";
        const int Cycles = 20;
        var connectionString = await postgres.CreateDatabaseAsync("cli_cycles");
        using var workload = await AuditedWorkload.CreateAsync(postgres.Server, connectionString, refusedBucket: "user:u8");
        using var directory = new WorkingDirectory();
        var config = WriteConfig(directory, connectionString, slot);
        var random = new Random(20261206);

        var loaded = new List<TimeSpan>();
        var idle = new List<TimeSpan>();
        for (var cycle = 0; cycle < Cycles; cycle++)
        {
            using var run = CliProcess.Start(directory.Path, null, "run", "--config", config);
            await CliDatabase.WaitForStreamingAsync(connectionString, slot, run);
            // Under load, pgbench outlasts the stop's latest moment (1.6 s) with room for a loaded machine's delays.
            var pgbench = workload.RunPgbenchAsync(seconds: cycle % 2 == 0 ? 5 : 2, rate: 250);
            CliResult result;
            TimeSpan took;
            if (cycle % 2 == 0)
            {
                // Under load: the stop lands while pgbench writes and the pipeline writes batches.
                await Task.Delay(random.Next(600, 1600));
                Assert.False(pgbench.IsCompleted, "pgbench ended before the stop under load");
                (result, took) = await StopAsync(run);
                loaded.Add(took);
                await pgbench;
            }
            else
            {
                await pgbench;
                await Task.Delay(TimeSpan.FromSeconds(1.5));
                (result, took) = await StopAsync(run);
                idle.Add(took);
            }
            AssertStoppedCleanly(result);
        }

        // A last run takes what is left.
        using (var last = CliProcess.Start(directory.Path, null, "run", "--config", config))
        {
            await CliDatabase.WaitForStreamingAsync(connectionString, slot, last);
            await workload.InsertMarkerAsync();
            await workload.WaitForMarkerAsync(
                () => last.HasExited ? throw new InvalidOperationException($"synchro-pipeline exited: {last.Error}") : Task.CompletedTask,
                TimeSpan.FromMinutes(2));
            AssertStoppedCleanly((await StopAsync(last)).Result);
        }

        var rows = await workload.AssertChangelogMatchesAuditAsync(minimumRows: 2000);
        output.WriteLine($"{Cycles} cycles, {rows} changelog rows");
        output.WriteLine($"stops under load (SIGTERM to exit): {Describe(loaded)}");
        output.WriteLine($"stops idle (SIGTERM to exit): {Describe(idle)}");
        Assert.True(idle.Max() < s_idleStopLimit, $"an idle stop took {idle.Max().TotalSeconds:F2} s: {Describe(idle)}");
        Assert.True(loaded.Max() < s_loadedStopLimit, $"a stop under load took {loaded.Max().TotalSeconds:F2} s: {Describe(loaded)}");
    }

    /// <summary>SIGTERM, timed from just before the signal is sent (by <c>/bin/kill</c>) to the process's exit.</summary>
    private static async Task<(CliResult Result, TimeSpan Took)> StopAsync(CliProcess run)
    {
        Assert.False(run.HasExited, $"synchro-pipeline exited before the stop: {run.Error}");
        var started = Stopwatch.GetTimestamp();
        var result = await run.TerminateAsync(TimeSpan.FromSeconds(60));
        return (result, Stopwatch.GetElapsedTime(started));
    }

    private static void AssertStoppedCleanly(CliResult result)
    {
        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains("synchro-pipeline run: stopped cleanly;", result.Output, StringComparison.Ordinal);
        // No fatal error, no grace run out, no stream the server could not end.
        Assert.DoesNotContain("crit:", result.Error, StringComparison.Ordinal);
        Assert.DoesNotContain("fail:", result.Error, StringComparison.Ordinal);
        Assert.DoesNotContain("[1018]", result.Error, StringComparison.Ordinal);
        Assert.DoesNotContain("[1019]", result.Error, StringComparison.Ordinal);
    }

    private static string WriteConfig(WorkingDirectory directory, string connectionString, string slot) => directory.WriteFile(JsonSerializer.Serialize(new Dictionary<string, object>
    {
        ["Synchro"] = new Dictionary<string, object>
        {
            ["ConnectionString"] = connectionString,
            ["SlotName"] = slot,
            ["PublicationName"] = AuditedWorkload.Publication,
            ["MaxBatchRows"] = 50,
            ["BatchLinger"] = "5ms",
            ["StatusInterval"] = "1s",
            ["Tables"] = new Dictionary<string, object> { [AuditedWorkload.Table] = new Dictionary<string, object> { ["OwnerColumn"] = AuditedWorkload.OwnerColumn } },
        },
    }), "pipeline.json");

    private static string Describe(List<TimeSpan> stops)
    {
        var sorted = stops.Order().ToList();
        var median = sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[(sorted.Count / 2) - 1] + sorted[sorted.Count / 2]) / 2;
        return string.Create(CultureInfo.InvariantCulture,
            $"{stops.Count} stops, median {median.TotalSeconds:F3} s, max {sorted[^1].TotalSeconds:F3} s, min {sorted[0].TotalSeconds:F3} s [{string.Join(", ", stops.Select(s => s.TotalSeconds.ToString("F3", CultureInfo.InvariantCulture)))}]");
    }
}
