using System.Diagnostics;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Synchro.Pipeline.Hosting;
using Synchro.Pipeline.LocalPostgres;
using Synchro.Pipeline.Tests.Cli;
using Synchro.Pipeline.Tests.Hosting;
using Synchro.Pipeline.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Synchro.Pipeline.Tests.Pipeline;

/// <summary>
/// Start-up is inside the retry loop: a server that is restarting, down or not yet accepting connections while the
/// pipeline starts is waited for, with each attempt logged (event 1020), and the start goes on — for the library, the
/// hosted service (health Degraded, Unhealthy past its bound, then Healthy) and the CLI alike.
/// </summary>
/// <remarks>Each test has a server of its own: they restart or stop it.</remarks>
public sealed class StartupRetryTests(ITestOutputHelper output)
{
    private const int StartRetrying = 1020;
    private const int Reconnecting = 1004;

    // The issue saw 2 failed starts in 22 with `pg_ctl restart -m immediate` during start-up.
    private const int Starts = 22;

    // Rows the initial snapshot of each start loads, so start-up lasts long enough to be hit at every stage.
    private const int Rows = 50_000;

    private static WalPipelineOptions Options(string connectionString, string slot, ILoggerFactory logs) => new()
    {
        ConnectionString = connectionString,
        SlotName = slot,
        PublicationName = PipelineHarness.Publication,
        Tables = PipelineHarness.Registry(),
        BatchLinger = TimeSpan.FromMilliseconds(5),
        StatusInterval = TimeSpan.FromSeconds(1),
        MaxReconnectDelay = TimeSpan.FromSeconds(1),
        LoggerFactory = logs,
    };

    private static async Task<string> CreateSourceAsync(LocalPostgresServer server, string name)
    {
        var connectionString = await server.CreateDatabaseAsync(name);
        await Sql.ExecuteAsync(Unpooled(connectionString), PipelineHarness.Schema);
        await Sql.ExecuteAsync(Unpooled(connectionString), $"INSERT INTO orders (id, user_id) SELECT gen_random_uuid(), 'u' || (g % 50) FROM generate_series(1, {Rows}) g");
        return connectionString;
    }

    [Fact]
    public async Task A_server_crash_restarted_during_start_up_is_waited_for_and_each_start_goes_on_exactly_once()
    {
        await using var server = await LocalPostgresServer.StartAsync();
        var connectionString = await CreateSourceAsync(server, "startup_restart");
        var hitStartUp = 0;

        for (var start = 0; start < Starts; start++)
        {
            var slot = $"startup_{start}";
            var logs = new RecordingLoggerFactory();
            var pipeline = new WalPipeline(Options(connectionString, slot, logs));
            await using (pipeline)
            {
                using var stop = new CancellationTokenSource();
                var clock = Stopwatch.StartNew();
                var running = pipeline.RunAsync(stop.Token);
                // Spread the crash over the whole start-up (lock, checks, migration, slot creation, snapshot, first stream),
                // which takes a few hundred milliseconds here; pg_ctl takes a moment more to bring the server down.
                await Task.Delay(TimeSpan.FromMilliseconds(start * 10));
                var stateAtCrash = pipeline.GetStatus().State;
                var crashedAt = clock.Elapsed;
                await server.RestartAsync(immediate: true);
                try
                {
                    await WaitForStreamingAsync(connectionString, slot, running);
                    // A change made now arrives exactly once.
                    var marker = $"marker-{start}";
                    await Sql.ExecuteAsync(Unpooled(connectionString), $"INSERT INTO orders (id, user_id) VALUES (gen_random_uuid(), '{marker}')");
                    await WaitUntilAsync(async () => await Sql.ScalarAsync<long>(Unpooled(connectionString), $"SELECT count(*) FROM sync_changelog WHERE bucket_id = 'user:{marker}'") > 0, running);
                    Assert.Equal(1L, await Sql.ScalarAsync<long>(Unpooled(connectionString), $"SELECT count(*) FROM sync_changelog WHERE bucket_id = 'user:{marker}'"));
                    await stop.CancelAsync();
                    await running;
                }
                finally
                {
                    await stop.CancelAsync();
                    await Task.WhenAny(running);
                }

                var retries = logs.Entries.Where(e => e.EventId.Id == StartRetrying).ToList();
                var reconnects = logs.Entries.Count(e => e.EventId.Id == Reconnecting);
                if (retries.Count > 0)
                    hitStartUp++;
                output.WriteLine($"start {start}: crash at {crashedAt.TotalMilliseconds:F0} ms ({stateAtCrash}); {retries.Count} start attempt(s) retried, {reconnects} reconnect(s); streaming and written after {clock.Elapsed.TotalSeconds:F1} s");
                foreach (var retry in retries.Take(3))
                    output.WriteLine("    " + retry.Message);
                // Npgsql's own categories may log a transaction it could not roll back on the dead connection.
                Assert.DoesNotContain(logs.Entries, e => e.Level >= LogLevel.Error && e.Category.StartsWith(WalPipeline.LogCategory, StringComparison.Ordinal));
                Assert.All(retries, r => Assert.Matches(@"^Could not start, attempt \d+ \(.+\); trying again in \d+ ms \(failing for \d+ s\)", r.Message));
                Assert.Equal(WalPipelineState.Stopped, pipeline.GetStatus().State);
            }
            await Sql.ExecuteAsync(Unpooled(connectionString), $"SELECT pg_drop_replication_slot('{slot}')");
        }

        output.WriteLine($"{hitStartUp} of {Starts} crashes hit the start-up (retried with event 1020); the others hit a streaming pipeline (event 1004)");
        Assert.True(hitStartUp >= Starts / 3, $"only {hitStartUp} of {Starts} crashes hit the start-up: the test did not exercise it");
    }

    [Fact]
    public async Task A_hosted_pipeline_started_while_its_server_is_down_waits_degraded_then_unhealthy_past_the_bound_and_streams_when_it_is_back()
    {
        await using var server = await LocalPostgresServer.StartAsync();
        var connectionString = await CreateSourceAsync(server, "startup_hosted");
        var harness = PipelineHarness.Attach(connectionString, "startup_hosted", connectionString);
        var logs = new RecordingLoggerFactory();
        var builder = HostedPipelineTests.HostBuilder(harness, logs);
        builder.Services.Configure<WalPipelineHealthCheckOptions>(o => o.MaxRetryDuration = TimeSpan.FromSeconds(4));
        using var host = builder.Build();

        var outage = server.StopForAsync(TimeSpan.FromSeconds(12));
        await Task.Delay(500);
        await host.StartAsync();
        try
        {
            var pipeline = host.Services.GetRequiredService<WalPipeline>();
            var degraded = await WaitForHealthAsync(host, HealthStatus.Degraded, h => h.Data["retry_attempts"] is > 0);
            var unhealthy = await WaitForHealthAsync(host, HealthStatus.Unhealthy);
            Assert.Equal(WalPipelineState.Starting, pipeline.GetStatus().State);
            output.WriteLine($"degraded: {degraded.Description}");
            output.WriteLine($"unhealthy: {unhealthy.Description}");
            Assert.StartsWith("The pipeline could not start yet (", degraded.Description, StringComparison.Ordinal);
            Assert.StartsWith("The pipeline has been trying to start for ", unhealthy.Description, StringComparison.Ordinal);

            await outage;
            await WaitForHealthAsync(host, HealthStatus.Healthy, timeout: TimeSpan.FromSeconds(60));
            await Sql.ExecuteAsync(Unpooled(connectionString), "INSERT INTO orders (id, user_id) VALUES (gen_random_uuid(), 'after-outage')");
            await WaitUntilAsync(async () => await Sql.ScalarAsync<long>(Unpooled(connectionString), "SELECT count(*) FROM sync_changelog WHERE bucket_id = 'user:after-outage'") == 1, Task.Delay(Timeout.Infinite));
            Assert.True(logs.Entries.Count(e => e.EventId.Id == StartRetrying) >= 3);
            Assert.DoesNotContain(logs.Entries, e => e.Level >= LogLevel.Error && !e.Category.StartsWith("Microsoft.Extensions.Diagnostics.HealthChecks", StringComparison.Ordinal));
        }
        finally
        {
            await outage.ContinueWith(_ => { }, TaskScheduler.Default);
            await host.StopAsync();
        }
    }

    [Fact]
    public async Task The_cli_run_started_while_its_server_is_down_logs_each_attempt_and_streams_when_it_is_back()
    {
        await using var server = await LocalPostgresServer.StartAsync();
        var connectionString = await CreateSourceAsync(server, "startup_cli");
        using var directory = new WorkingDirectory();
        directory.WriteFile(JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["Synchro"] = new Dictionary<string, object>
            {
                ["ConnectionString"] = connectionString,
                ["SlotName"] = "startup_cli",
                ["PublicationName"] = PipelineHarness.Publication,
                ["MaxReconnectDelay"] = "1s",
                ["Tables"] = new Dictionary<string, object> { ["orders"] = new Dictionary<string, object> { ["OwnerColumn"] = "user_id" } },
            },
        }));

        var outage = server.StopForAsync(TimeSpan.FromSeconds(8));
        await Task.Delay(500);
        CliResult result;
        using (var run = CliProcess.Start(directory.Path, null, "run"))
        {
            await outage;
            await CliDatabase.WaitForStreamingAsync(Unpooled(connectionString), "startup_cli", run);
            // The stop's own speed is not measured here.
            result = await run.TerminateAsync(TimeSpan.FromSeconds(90));
        }

        output.WriteLine(result.Error);
        Assert.True(result.ExitCode == 0, result.ToString());
        var attempts = result.Error.Split('\n').Where(l => l.Contains("[1020] Could not start, attempt", StringComparison.Ordinal)).ToList();
        Assert.True(attempts.Count >= 3, result.Error);
        Assert.Contains("[1020] Could not start, attempt 1 (", attempts[0], StringComparison.Ordinal);
        Assert.Contains("[1001] Replicating from slot startup_cli", result.Error, StringComparison.Ordinal);
    }

    /// <summary>The test's own queries: a pooled connection would outlive the restart and fail its next command.</summary>
    private static string Unpooled(string connectionString) => new Npgsql.NpgsqlConnectionStringBuilder(connectionString) { Pooling = false }.ConnectionString;

    private static async Task WaitForStreamingAsync(string connectionString, string slot, Task running)
    {
        var deadline = DateTime.UtcNow.AddSeconds(90);
        while (true)
        {
            if (running.IsCompleted)
            {
                await running;
                throw new InvalidOperationException($"The pipeline of {slot} stopped by itself before streaming.");
            }
            try
            {
                if (await Sql.ScalarAsync<bool>(Unpooled(connectionString), PipelineHostProcess.SlotStreamingQuery.Replace("$1", "@slot", StringComparison.Ordinal), ("slot", slot)))
                    return;
            }
            catch (Npgsql.NpgsqlException)
            {
                // The server is still starting.
            }
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"The pipeline of {slot} did not stream within 90 s of the crash.");
            await Task.Delay(50);
        }
    }

    private static async Task WaitUntilAsync(Func<Task<bool>> condition, Task running)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (!await condition())
        {
            if (running.IsCompleted)
                await running;
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException("The condition was not met in 60 s.");
            await Task.Delay(50);
        }
    }

    private static async Task<HealthReportEntry> WaitForHealthAsync(IHost host, HealthStatus expected, Func<HealthReportEntry, bool>? also = null, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(30));
        while (true)
        {
            var report = await host.Services.GetRequiredService<HealthCheckService>().CheckHealthAsync(r => r.Tags.Contains(WalPipelineHealthCheckOptions.Tag));
            var health = Assert.Single(report.Entries, e => e.Key == WalPipelineHealthCheckOptions.CheckName).Value;
            if (health.Status == expected && (also?.Invoke(health) ?? true))
                return health;
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"Health is {health.Status} ({health.Description}), expected {expected}.");
            await Task.Delay(50);
        }
    }
}
