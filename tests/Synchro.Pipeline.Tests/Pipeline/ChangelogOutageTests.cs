using System.Diagnostics;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Logging;
using Synchro.Pipeline.Hosting;
using Synchro.Pipeline.LocalPostgres;
using Xunit.Abstractions;

namespace Synchro.Pipeline.Tests.Pipeline;

/// <summary>
/// The changelog database, on a server of its own, goes down for 30 s while the source stays up and pgbench keeps
/// writing: the pipeline retries (event 1004), its health goes Degraded, then Unhealthy past the configured bound, then
/// Healthy again once it is back, and the changelog is exactly the audit trail — nothing lost, nothing twice.
/// </summary>
public sealed class ChangelogOutageTests(ITestOutputHelper output)
{
    private const string Slot = "slot_changelog_outage";
    private const int Reconnecting = 1004;
    private static readonly TimeSpan s_outage = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan s_retryBound = TimeSpan.FromSeconds(15);

    [Fact]
    public async Task The_changelog_database_down_for_30_s_is_retried_and_caught_up_exactly_once_with_the_health_check_following()
    {
        await using var source = await LocalPostgresServer.StartAsync();
        await using var changelogServer = await LocalPostgresServer.StartAsync();
        var sourceConnection = await source.CreateDatabaseAsync("outage_source");
        var changelogConnection = await changelogServer.CreateDatabaseAsync("outage_changelog");
        using var workload = await AuditedWorkload.CreateAsync(source, sourceConnection);
        workload.ChangelogConnectionString = changelogConnection;
        var logs = new RecordingLoggerFactory();
        await using var pipeline = new WalPipeline(new WalPipelineOptions
        {
            ConnectionString = sourceConnection,
            ChangelogConnectionString = changelogConnection,
            SlotName = Slot,
            PublicationName = AuditedWorkload.Publication,
            Tables = AuditedWorkload.Registry(),
            MaxBatchRows = 50,
            BatchLinger = TimeSpan.FromMilliseconds(5),
            StatusInterval = TimeSpan.FromSeconds(1),
            MaxReconnectDelay = TimeSpan.FromSeconds(2),
            LoggerFactory = logs,
        });
        var limits = new WalPipelineHealthCheckOptions { MaxRetryDuration = s_retryBound };
        using var stop = new CancellationTokenSource();
        var running = pipeline.RunAsync(stop.Token);
        var health = new List<(TimeSpan At, HealthStatus Status, string? Description)>();
        var clock = Stopwatch.StartNew();
        var watching = WatchHealthAsync(pipeline, limits, health, clock, stop.Token);
        async Task Alive()
        {
            if (!running.IsCompleted)
                return;
            await running;
            throw new InvalidOperationException("The pipeline stopped by itself.");
        }

        TimeSpan down, up;
        try
        {
            await PipelineHostProcess.WaitForSlotAsync(workload.ConnectionString, Slot);
            await workload.RunPgbenchAsync(seconds: 3, rate: 100);

            // The changelog server goes down while pgbench keeps writing into the source.
            down = clock.Elapsed;
            var outage = changelogServer.StopForAsync(s_outage);
            var transactions = await workload.RunPgbenchAsync(seconds: 20, rate: 100);
            await Alive();
            await outage;
            up = clock.Elapsed;
            output.WriteLine($"changelog server down from {down.TotalSeconds:F1} s to {up.TotalSeconds:F1} s; {transactions} pgbench transactions meanwhile");

            await workload.RunPgbenchAsync(seconds: 2, rate: 100);
            await workload.InsertMarkerAsync();
            await workload.WaitForMarkerAsync(Alive, TimeSpan.FromMinutes(2));
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (WalPipelineHealthCheck.Evaluate(pipeline.GetStatus(), limits, HealthStatus.Unhealthy).Status != HealthStatus.Healthy)
            {
                Assert.True(DateTime.UtcNow < deadline, "the health check did not turn Healthy after the catch-up");
                await Task.Delay(100);
            }
            output.WriteLine($"caught up at {clock.Elapsed.TotalSeconds:F1} s");
        }
        finally
        {
            await stop.CancelAsync();
            await Task.WhenAny(running);
            await watching;
        }
        await running;

        var rows = await workload.AssertChangelogMatchesAuditAsync(minimumRows: 1000);
        output.WriteLine($"{rows} changelog rows match the audit trail; {pipeline.GetStatus().Reconnects} reconnects");
        foreach (var (at, status, description) in Transitions(health))
            output.WriteLine($"  {at.TotalSeconds,6:F1} s {status}: {description}");

        // Healthy before, Degraded when the outage began, Unhealthy past the bound, Healthy once caught up.
        var transitions = Transitions(health);
        var degraded = transitions.FindIndex(t => t.Status == HealthStatus.Degraded && t.At >= down);
        var unhealthy = transitions.FindIndex(t => t.Status == HealthStatus.Unhealthy && t.At >= down);
        var healthy = transitions.FindLastIndex(t => t.Status == HealthStatus.Healthy);
        Assert.True(degraded >= 0 && unhealthy > degraded && healthy > unhealthy, string.Join(" -> ", transitions.Select(t => $"{t.At.TotalSeconds:F1} s {t.Status}")));
        Assert.True(transitions[unhealthy].At - transitions[degraded].At >= s_retryBound - TimeSpan.FromSeconds(2),
            $"Unhealthy came {(transitions[unhealthy].At - transitions[degraded].At).TotalSeconds:F1} s after Degraded, before the {s_retryBound.TotalSeconds} s bound");
        Assert.Contains("The pipeline has been reconnecting for", transitions[unhealthy].Description, StringComparison.Ordinal);
        Assert.True(transitions[healthy].At >= up, "Healthy again before the changelog server was back");
        Assert.True(logs.Entries.Count(e => e.EventId.Id == Reconnecting) >= 5, "the outage was not retried");
        Assert.DoesNotContain(logs.Entries, e => e.Level >= LogLevel.Critical);
    }

    /// <summary>Samples the health check every 100 ms until cancelled.</summary>
    private static async Task WatchHealthAsync(WalPipeline pipeline, WalPipelineHealthCheckOptions limits, List<(TimeSpan, HealthStatus, string?)> health, Stopwatch clock, CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            var result = WalPipelineHealthCheck.Evaluate(pipeline.GetStatus(), limits, HealthStatus.Unhealthy);
            lock (health)
                health.Add((clock.Elapsed, result.Status, result.Description));
            await Task.Delay(100, CancellationToken.None);
        }
    }

    /// <summary>The samples where the status changed.</summary>
    private static List<(TimeSpan At, HealthStatus Status, string? Description)> Transitions(List<(TimeSpan At, HealthStatus Status, string? Description)> health)
    {
        lock (health)
            return health.Where((h, i) => i == 0 || health[i - 1].Status != h.Status).ToList();
    }
}
