using System.Diagnostics;
using System.Globalization;
using Synchro.Pipeline.Diagnostics;
using Synchro.Pipeline.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Synchro.Pipeline.Tests.Pipeline;

/// <summary>
/// A pipeline process killed with SIGKILL under a pgbench workload and replaced at once, as a service manager or a rolling
/// deployment does: the replacement waits for the slot (the old session's lock and walsender) instead of failing, streams
/// as soon as it is free, and the changelog is exactly what the audit trail says.
/// </summary>
[Collection(PostgresCollection.Name)]
[Trait(TestCategories.Name, TestCategories.VersionSensitive)]
public sealed class RestartAfterKillTests(PostgresServerFixture postgres, ITestOutputHelper output)
{
    private const string Slot = "slot_restart_after_kill";
    private const int OverlappingKills = 3;
    private static readonly TimeSpan s_eventTimeout = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task A_replacement_for_a_pipeline_killed_under_pgbench_waits_for_the_slot_then_streams_and_the_changelog_is_exactly_the_audit_trail()
    {
        var connectionString = await postgres.CreateDatabaseAsync("restart_after_kill");
        using var workload = await AuditedWorkload.CreateAsync(postgres.Server, connectionString);
        var random = new Random(20261207);
        var takeovers = new List<TimeSpan>();

        var host = StartHost(connectionString);
        try
        {
            await WaitForEventAsync(host, EventIds.Replicating);
            var pgbench = workload.RunPgbenchAsync(seconds: 15, rate: 300);
            for (var kill = 0; kill < OverlappingKills; kill++)
            {
                await Task.Delay(random.Next(500, 1500));
                // The replacement starts while the old process still runs: it must wait, not fail.
                var next = StartHost(connectionString);
                await WaitForEventAsync(next, EventIds.SlotWaiting);
                var killed = Stopwatch.GetTimestamp();
                await host.KillAsync();
                host.Dispose();
                host = next;
                await WaitForEventAsync(host, EventIds.SlotAcquired);
                await WaitForEventAsync(host, EventIds.Replicating);
                takeovers.Add(Stopwatch.GetElapsedTime(killed));
            }

            // Killed, then started again at once: streams, whether or not the old session was still there.
            await Task.Delay(random.Next(500, 1500));
            await host.KillAsync();
            host.Dispose();
            host = StartHost(connectionString);
            await WaitForEventAsync(host, EventIds.Replicating);
            Assert.True(pgbench.IsCompleted is false, "pgbench ended before the last kill");

            await pgbench;
            await workload.InsertMarkerAsync();
            await workload.WaitForMarkerAsync(
                host.ThrowIfExitedAsync,
                TimeSpan.FromMinutes(3));
        }
        finally
        {
            host.Dispose();
        }

        var rows = await workload.AssertChangelogMatchesAuditAsync(minimumRows: 1000);
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{rows} changelog rows; from SIGKILL to the waiting replacement streaming: {string.Join(", ", takeovers.Select(t => t.TotalSeconds.ToString("F2", CultureInfo.InvariantCulture)))} s"));
    }

    private static PipelineHostProcess StartHost(string connectionString) =>
        PipelineHostProcess.Start(connectionString, Slot, AuditedWorkload.Publication, AuditedWorkload.Table, AuditedWorkload.OwnerColumn, maxBatchRows: 50);

    // The test host writes each event as "event <id> <level>: <message>".
    private static bool HasLogged(PipelineHostProcess host, int eventId)
        => host.Errors.Any(line => line.StartsWith(string.Create(CultureInfo.InvariantCulture, $"event {eventId} "), StringComparison.Ordinal));

    private static async Task WaitForEventAsync(PipelineHostProcess host, int eventId)
    {
        var deadline = DateTime.UtcNow + s_eventTimeout;
        while (!HasLogged(host, eventId))
        {
            if (host.HasExited)
                throw new InvalidOperationException($"The pipeline process exited with code {host.ExitCode} before event {eventId}: {string.Join(Environment.NewLine, host.Errors)}");
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"The pipeline process did not log event {eventId} in {s_eventTimeout.TotalSeconds} s: {string.Join(Environment.NewLine, host.Errors)}");
            await Task.Delay(20);
        }
    }
}
