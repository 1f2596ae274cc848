using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Globalization;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Logging;
using Npgsql;
using Synchro.Pipeline.Diagnostics;
using Synchro.Pipeline.Hosting;
using Synchro.Pipeline.Tests.Diagnostics;
using Synchro.Pipeline.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Synchro.Pipeline.Tests.Pipeline;

/// <summary>
/// One active and waiting instances of a slot (<see cref="WalPipelineOptions.WaitForLock"/>): a waiting instance holds no
/// lock, is healthy, stops at once, and takes over within seconds when the active one is killed, with the changelog exactly
/// the audit trail; of two waiting instances one takes over and the other keeps waiting.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class WaitForLockTests(PostgresServerFixture postgres, ITestOutputHelper output)
{
    private const string Slot = "slot_wait_for_lock_kill";
    private const int Kills = 2;
    private const string First = "00000000-0000-0000-0000-0000000000e1";
    private const string Second = "00000000-0000-0000-0000-0000000000e2";
    private const string Third = "00000000-0000-0000-0000-0000000000e3";

    // Generous for a loaded 2-core machine: a killed process's sessions end at once, the lock is polled every 0.2 s,
    // and the start that follows (checks, position) takes well under a second on a quiet one.
    private static readonly TimeSpan s_takeoverBound = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan s_eventTimeout = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task A_waiting_instance_takes_over_within_seconds_when_the_active_one_is_killed_under_pgbench_and_the_changelog_is_exactly_the_audit_trail()
    {
        var connectionString = await postgres.CreateDatabaseAsync("wait_for_lock_kill");
        using var workload = await AuditedWorkload.CreateAsync(postgres.Server, connectionString);
        var takeovers = new List<TimeSpan>();

        var active = StartHost(connectionString);
        PipelineHostProcess? waiting = null;
        try
        {
            await WaitForEventAsync(active, EventIds.Replicating);
            var pgbench = workload.RunPgbenchAsync(seconds: 12, rate: 300);
            for (var kill = 0; kill < Kills; kill++)
            {
                waiting = StartHost(connectionString);
                var announced = await WaitForEventAsync(waiting, EventIds.LockWaiting);
                Assert.Contains("the slot lock of another pipeline (backend pid ", announced, StringComparison.Ordinal);
                await Task.Delay(TimeSpan.FromSeconds(2));
                Assert.False(HasLogged(waiting, EventIds.Replicating), "the waiting instance streamed while the active one held the slot");

                var killed = Stopwatch.GetTimestamp();
                await active.KillAsync();
                active.Dispose();
                await WaitForEventAsync(waiting, EventIds.LockTakenOver);
                await WaitForEventAsync(waiting, EventIds.Replicating);
                takeovers.Add(Stopwatch.GetElapsedTime(killed));
                active = waiting;
                waiting = null;
            }
            Assert.False(pgbench.IsCompleted, "pgbench ended before the last kill");

            await pgbench;
            await workload.InsertMarkerAsync();
            await workload.WaitForMarkerAsync(
                active.ThrowIfExitedAsync,
                TimeSpan.FromMinutes(3));
        }
        finally
        {
            active.Dispose();
            waiting?.Dispose();
        }

        var rows = await workload.AssertChangelogMatchesAuditAsync(minimumRows: 1000);
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{rows} changelog rows; from SIGKILL of the active instance to the waiting one streaming: {string.Join(", ", takeovers.Select(t => t.TotalSeconds.ToString("F2", CultureInfo.InvariantCulture)))} s"));
        Assert.All(takeovers, t => Assert.True(t < s_takeoverBound, $"the waiting instance took {t.TotalSeconds:F1} s to take over (bound {s_takeoverBound.TotalSeconds} s)"));
    }

    [Fact]
    public async Task A_waiting_instance_holds_no_lock_is_healthy_names_the_holder_and_stops_at_once()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "wait_for_lock_stop");
        var first = harness.Options();
        first.ConnectionString = new NpgsqlConnectionStringBuilder(harness.ConnectionString) { ApplicationName = "active-instance" }.ConnectionString;
        await harness.StartAsync(first);
        await harness.ExecuteAsync($"INSERT INTO orders (id, user_id) VALUES ('{First}', 'alice')");
        await harness.WaitForChangelogAsync(1);

        var logs = new RecordingLoggerFactory(LogLevel.Information);
        using var services = new ServiceCollection().AddMetrics().BuildServiceProvider();
        var meters = services.GetRequiredService<IMeterFactory>();
        using var recorder = new MeterRecorder(meters);
        var options = harness.Options();
        options.WaitForLock = true;
        // Far shorter than the wait below: a waiting instance is not bound by it.
        options.SlotWaitTimeout = TimeSpan.FromSeconds(1);
        options.LoggerFactory = logs;
        options.MeterFactory = meters;
        await using var passive = new WalPipeline(options);
        using var stop = new CancellationTokenSource();
        var running = passive.RunAsync(stop.Token);
        await OperationsSql.WaitUntilAsync(async () =>
        {
            if (running.IsCompleted)
                await running;
            return passive.GetStatus().State == WalPipelineState.WaitingForLock;
        }, "the second instance to wait for the lock", TimeSpan.FromSeconds(30));
        await Task.Delay(TimeSpan.FromSeconds(2));

        var status = passive.GetStatus();
        Assert.Equal(WalPipelineState.WaitingForLock, status.State);
        Assert.Contains("application_name 'active-instance'", status.LockHolder, StringComparison.Ordinal);
        var health = WalPipelineHealthCheck.Evaluate(status, new WalPipelineHealthCheckOptions { MaxRetryDuration = TimeSpan.FromSeconds(1) }, HealthStatus.Unhealthy);
        Assert.Equal(HealthStatus.Healthy, health.Status);
        Assert.StartsWith("Waiting to take over (WaitForLock): another instance is active and holds the slot lock of another pipeline (backend pid ", health.Description, StringComparison.Ordinal);
        recorder.RecordObservableInstruments();
        Assert.Equal(0, recorder.Last("synchro.pipeline.instance.active"));
        var announced = Assert.Single(logs.Entries, e => e.EventId.Id == EventIds.LockWaiting);
        Assert.Equal(LogLevel.Information, announced.Level);
        Assert.Contains("application_name 'active-instance'", announced.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(logs.Entries, e => e.Level >= LogLevel.Warning);
        // No lock of the changelog, and the active instance goes on undisturbed.
        await harness.ExecuteAsync($"INSERT INTO orders (id, user_id) VALUES ('{Second}', 'bob')");
        await harness.WaitForChangelogAsync(2);
        Assert.Equal(0L, harness.Pipeline!.GetStatus().Reconnects);

        var stopping = Stopwatch.GetTimestamp();
        await stop.CancelAsync();
        await running.WaitAsync(TimeSpan.FromSeconds(30));
        var stopped = Stopwatch.GetElapsedTime(stopping);
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"the waiting instance stopped {stopped.TotalMilliseconds:F0} ms after the stop was asked for"));
        Assert.True(stopped < TimeSpan.FromSeconds(2), $"the waiting instance took {stopped} to stop");
        Assert.Equal(WalPipelineState.Stopped, passive.GetStatus().State);
        Assert.Null(passive.GetStatus().LockHolder);
    }

    [Fact]
    public async Task Of_two_waiting_instances_one_takes_over_and_the_other_keeps_waiting_naming_the_new_holder()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "wait_for_lock_two");
        await harness.StartAsync();
        await harness.ExecuteAsync($"INSERT INTO orders (id, user_id) VALUES ('{First}', 'alice')");
        await harness.WaitForChangelogAsync(1);

        var b = WaitingInstance(harness, "instance-b");
        var c = WaitingInstance(harness, "instance-c");
        await using var pipelineB = b.Pipeline;
        await using var pipelineC = c.Pipeline;
        using var stopB = new CancellationTokenSource();
        using var stopC = new CancellationTokenSource();
        var runB = pipelineB.RunAsync(stopB.Token);
        var runC = pipelineC.RunAsync(stopC.Token);
        await OperationsSql.WaitUntilAsync(() => Task.FromResult(
            b.Pipeline.GetStatus().State == WalPipelineState.WaitingForLock && c.Pipeline.GetStatus().State == WalPipelineState.WaitingForLock),
            "both instances to wait", TimeSpan.FromSeconds(30));

        await harness.StopAsync();
        await OperationsSql.WaitUntilAsync(() => Task.FromResult(
            runB.IsCompleted || runC.IsCompleted || b.Pipeline.GetStatus().State == WalPipelineState.Running || c.Pipeline.GetStatus().State == WalPipelineState.Running),
            "one instance to take over", TimeSpan.FromSeconds(30));
        Assert.False(runB.IsCompleted || runC.IsCompleted, $"an instance ended: {runB.Exception ?? runC.Exception}");
        var (winner, loser, stopWinner, winnerRun, loserRun) = b.Pipeline.GetStatus().State == WalPipelineState.Running
            ? (b, c, stopB, runB, runC)
            : (c, b, stopC, runC, runB);

        await harness.ExecuteAsync($"INSERT INTO orders (id, user_id) VALUES ('{Second}', 'bob')");
        Assert.Equal([$"user:alice orders {First} 1", $"user:bob orders {Second} 1"], await harness.WaitForChangelogAsync(2));
        // The other keeps waiting, now for the winner, and never took anything.
        await OperationsSql.WaitUntilAsync(() => Task.FromResult(loser.Logs.Entries.Any(e => e.EventId.Id == EventIds.LockHolderChanged)),
            "the waiting instance to name the new holder", TimeSpan.FromSeconds(30));
        var loserStatus = loser.Pipeline.GetStatus();
        Assert.Equal(WalPipelineState.WaitingForLock, loserStatus.State);
        Assert.Contains($"application_name '{winner.Name}'", loserStatus.LockHolder, StringComparison.Ordinal);
        Assert.Single(winner.Logs.Entries, e => e.EventId.Id == EventIds.LockTakenOver);
        Assert.DoesNotContain(loser.Logs.Entries, e => e.EventId.Id is EventIds.LockTakenOver or EventIds.Replicating);

        // And takes over in turn when the winner stops.
        await stopWinner.CancelAsync();
        await winnerRun.WaitAsync(TimeSpan.FromSeconds(30));
        await OperationsSql.WaitUntilAsync(async () =>
        {
            if (loserRun.IsCompleted)
                await loserRun;
            return loser.Pipeline.GetStatus().State == WalPipelineState.Running;
        }, "the other instance to take over", TimeSpan.FromSeconds(30));
        await harness.ExecuteAsync($"INSERT INTO orders (id, user_id) VALUES ('{Third}', 'carol')");
        Assert.Equal([$"user:alice orders {First} 1", $"user:bob orders {Second} 1", $"user:carol orders {Third} 1"], await harness.WaitForChangelogAsync(3));
        await (loser == b ? stopB : stopC).CancelAsync();
        await loserRun.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.DoesNotContain(winner.Logs.Entries.Concat(loser.Logs.Entries), e => e.Level >= LogLevel.Error);
    }

    [Fact]
    public async Task An_active_instance_that_loses_its_lock_session_to_a_waiting_one_becomes_the_waiting_one_and_lets_the_changelog_go()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "wait_for_lock_lost");
        var a = WaitingInstance(harness, "instance-a");
        var b = WaitingInstance(harness, "instance-b");
        await using var pipelineA = a.Pipeline;
        await using var pipelineB = b.Pipeline;
        using var stopA = new CancellationTokenSource();
        using var stopB = new CancellationTokenSource();
        var runA = pipelineA.RunAsync(stopA.Token);
        await OperationsSql.WaitStreamingAsync(harness.ConnectionString, harness.Slot, runA);
        var runB = pipelineB.RunAsync(stopB.Token);
        await OperationsSql.WaitUntilAsync(() => Task.FromResult(runB.IsCompleted || b.Pipeline.GetStatus().State == WalPipelineState.WaitingForLock),
            "the second instance to wait", TimeSpan.FromSeconds(30));

        // The active instance's lock session is cut (a network blip, an operator): the waiting one takes the lock at once.
        var holder = await Sql.ScalarAsync<int>(harness.ConnectionString, SlotLockHolderSql, ("c", Synchro.Pipeline.Replication.SlotLock.LockClass), ("s", harness.Slot));
        Assert.Equal(holder, await Sql.ScalarAsync<int>(harness.ConnectionString, "SELECT pid FROM pg_stat_activity WHERE application_name = 'instance-a' AND backend_type = 'client backend' AND pid = @p", ("p", holder)));
        await harness.ExecuteAsync(string.Create(CultureInfo.InvariantCulture, $"SELECT pg_terminate_backend({holder})"));

        await OperationsSql.WaitUntilAsync(async () =>
        {
            if (runA.IsCompleted)
                await runA;
            if (runB.IsCompleted)
                await runB;
            return b.Pipeline.GetStatus().State == WalPipelineState.Running && a.Pipeline.GetStatus().State == WalPipelineState.WaitingForLock;
        }, "the waiting instance to run and the active one to wait", TimeSpan.FromSeconds(60));
        Assert.Contains("application_name 'instance-b'", a.Pipeline.GetStatus().LockHolder, StringComparison.Ordinal);
        await harness.ExecuteAsync($"INSERT INTO orders (id, user_id) VALUES ('{First}', 'alice')");
        Assert.Equal([$"user:alice orders {First} 1"], await harness.WaitForChangelogAsync(1));

        await stopA.CancelAsync();
        await stopB.CancelAsync();
        await Task.WhenAll(runA, runB).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.DoesNotContain(a.Logs.Entries.Concat(b.Logs.Entries), e => e.Level >= LogLevel.Error);
    }

    private const string SlotLockHolderSql = """
        SELECT l.pid FROM pg_locks l
        WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2 AND l.classid = @c::oid AND l.objid = hashtext(@s)::oid
        """;

    private static Instance WaitingInstance(PipelineHarness harness, string name)
    {
        var logs = new RecordingLoggerFactory(LogLevel.Information);
        var options = harness.Options();
        options.ConnectionString = new NpgsqlConnectionStringBuilder(harness.ConnectionString) { ApplicationName = name }.ConnectionString;
        options.WaitForLock = true;
        // An active instance notices a lost lock session at its next slot health check.
        options.SlotHealthInterval = TimeSpan.FromMilliseconds(500);
        options.LoggerFactory = logs;
        return new Instance(name, new WalPipeline(options), logs);
    }

    private sealed record Instance(string Name, WalPipeline Pipeline, RecordingLoggerFactory Logs);

    private static PipelineHostProcess StartHost(string connectionString) =>
        PipelineHostProcess.Start(connectionString, Slot, AuditedWorkload.Publication, AuditedWorkload.Table, AuditedWorkload.OwnerColumn, maxBatchRows: 50, waitForLock: true);

    // The test host writes each event as "event <id> <level>: <message>".
    private static bool HasLogged(PipelineHostProcess host, int eventId) => Logged(host, eventId) is not null;

    private static string? Logged(PipelineHostProcess host, int eventId)
        => host.Errors.FirstOrDefault(line => line.StartsWith(string.Create(CultureInfo.InvariantCulture, $"event {eventId} "), StringComparison.Ordinal));

    private static async Task<string> WaitForEventAsync(PipelineHostProcess host, int eventId)
    {
        var deadline = DateTime.UtcNow + s_eventTimeout;
        while (true)
        {
            if (Logged(host, eventId) is { } line)
                return line;
            if (host.HasExited)
                throw new InvalidOperationException($"The pipeline process exited with code {host.ExitCode} before event {eventId}: {string.Join(Environment.NewLine, host.Errors)}");
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"The pipeline process did not log event {eventId} in {s_eventTimeout.TotalSeconds} s: {string.Join(Environment.NewLine, host.Errors)}");
            await Task.Delay(20);
        }
    }
}
