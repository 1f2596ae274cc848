using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Synchro.Pipeline.Diagnostics;
using Synchro.Pipeline.Tests.Infrastructure;
using Synchro.Pipeline.Tests.Pipeline;
using Xunit.Abstractions;

namespace Synchro.Pipeline.Tests.Hosting;

/// <summary>
/// Stopping the host stops the hosted pipeline promptly: idle, and while it writes a stream of inserts (the batch in
/// flight finishes or rolls back; the next host writes the rest, nothing twice).
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class HostedStopTests(PostgresServerFixture postgres, ITestOutputHelper output)
{
    // The target is 2 s (plus the batch in flight under load); the margin is for a loaded 2-core machine.
    private static readonly TimeSpan s_idleLimit = TimeSpan.FromSeconds(4);
    private static readonly TimeSpan s_loadedLimit = TimeSpan.FromSeconds(9);

    [Fact]
    public async Task Host_stop_ends_the_pipeline_within_2_s_idle_and_under_writes_and_the_next_host_writes_the_rest_once()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "hosted_stop");
        var logs = new RecordingLoggerFactory(LogLevel.Information);

        // Idle, heartbeats every second.
        TimeSpan idle;
        using (var host = HostedPipelineTests.HostBuilder(harness, logs, o => o.MaxBatchRows = 200).Build())
        {
            await host.StartAsync();
            await WaitStreamingAsync(harness);
            await Task.Delay(TimeSpan.FromSeconds(2.5));
            idle = await StopAsync(host);
            Assert.Equal(WalPipelineState.Stopped, host.Services.GetRequiredService<WalPipeline>().GetStatus().State);
        }

        // Under a stream of inserts, 200 rows a statement.
        TimeSpan loaded;
        var inserted = 0;
        using (var host = HostedPipelineTests.HostBuilder(harness, logs, o => o.MaxBatchRows = 200).Build())
        {
            await host.StartAsync();
            await WaitStreamingAsync(harness);
            using var stopWriting = new CancellationTokenSource();
            var writing = Task.Run(async () =>
            {
                while (!stopWriting.IsCancellationRequested)
                {
                    await harness.ExecuteAsync(string.Create(CultureInfo.InvariantCulture,
                        $"INSERT INTO categories (id, name) SELECT g, 'c' || g FROM generate_series({inserted + 1}, {inserted + 200}) g"));
                    inserted += 200;
                }
            });
            await OperationsSql.WaitUntilAsync(async () => (await harness.ChangelogAsync()).Count >= 1000, "the pipeline to write under load", TimeSpan.FromSeconds(60));
            loaded = await StopAsync(host);
            await stopWriting.CancelAsync();
            await writing;
        }

        // The next host writes what the stopped one did not, and nothing twice.
        using (var host = HostedPipelineTests.HostBuilder(harness, logs).Build())
        {
            await host.StartAsync();
            // In commit order: a transaction written twice would be there before the last rows are.
            var rows = await harness.WaitForChangelogAsync(inserted, TimeSpan.FromMinutes(2));
            Assert.Equal(inserted, rows.Count);
            Assert.Equal(inserted, rows.Distinct(StringComparer.Ordinal).Count());
            await StopAsync(host);
        }

        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"host stop: idle {idle.TotalSeconds:F3} s, under writes {loaded.TotalSeconds:F3} s ({inserted} rows inserted)"));
        Assert.True(idle < s_idleLimit, $"an idle host stop took {idle.TotalSeconds:F2} s");
        Assert.True(loaded < s_loadedLimit, $"a host stop under writes took {loaded.TotalSeconds:F2} s");
        Assert.Equal(3, logs.Entries.Count(e => e.EventId.Id == EventIds.Stopped));
        Assert.DoesNotContain(logs.Entries, e => e.Level >= LogLevel.Error || e.EventId.Id is EventIds.StopGraceExpired or EventIds.StreamEndFailed);
    }

    private static async Task<TimeSpan> StopAsync(Microsoft.Extensions.Hosting.IHost host)
    {
        var started = Stopwatch.GetTimestamp();
        await host.StopAsync();
        return Stopwatch.GetElapsedTime(started);
    }

    private static Task WaitStreamingAsync(PipelineHarness harness) => OperationsSql.WaitUntilAsync(
        () => Sql.ScalarAsync<bool>(harness.ConnectionString, PipelineHostProcess.SlotStreamingQuery.Replace("$1", "@s", StringComparison.Ordinal), ("s", harness.Slot)),
        "the hosted pipeline to stream", TimeSpan.FromSeconds(60));
}
