using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Synchro.Pipeline.LocalPostgres;
using Xunit.Abstractions;

namespace Synchro.Pipeline.Tests.Pipeline;

/// <summary>
/// Invariant 1 across server restarts: a pipeline consuming a backlog while the server is restarted
/// (<c>pg_ctl restart -m fast</c> and <c>-m immediate</c>) reconnects from its persisted position and
/// writes exactly the changelog the surviving audit trail implies.
/// </summary>
/// <remarks>Uses its own server: restarting the shared one would break the tests running beside it.</remarks>
public sealed class ServerRestartTests(ITestOutputHelper output)
{
    private const string Slot = "slot_server_restart";
    private const int ReconnectingEventId = 1004;

    // A fast shutdown waits for a logical walsender until its client confirms everything sent, so a caught-up
    // pipeline that never noticed the shutdown would hold the server until pg_ctl gives up (60 s).
    private static readonly TimeSpan s_idleRestartLimit = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task Changelog_is_exactly_the_audit_trail_across_fast_and_immediate_server_restarts()
    {
        await using var server = await LocalPostgresServer.StartAsync();
        var connectionString = await server.CreateDatabaseAsync("server_restart");
        using var workload = await AuditedWorkload.CreateAsync(server, connectionString);
        var logs = new RecordingLoggerFactory();
        await using var pipeline = new WalPipeline(new WalPipelineOptions
        {
            ConnectionString = connectionString,
            SlotName = Slot,
            PublicationName = AuditedWorkload.Publication,
            Tables = AuditedWorkload.Registry(),
            MaxBatchRows = 50,
            BatchLinger = TimeSpan.FromMilliseconds(5),
            StatusInterval = TimeSpan.FromSeconds(1),
            MaxReconnectDelay = TimeSpan.FromSeconds(1),
            LoggerFactory = logs,
        });
        using var stop = new CancellationTokenSource();
        var running = pipeline.RunAsync(stop.Token);
        async Task Alive()
        {
            if (!running.IsCompleted)
                return;
            await running;
            throw new InvalidOperationException("The pipeline stopped by itself.");
        }

        try
        {
            await WaitForStreamingAsync(connectionString, Alive);

            await workload.RunPgbenchAsync(seconds: 1, rate: 300);
            await WaitUntilCaughtUpAsync(workload, pipeline, Alive);
            var idle = await RestartAndReconnectAsync(server, immediate: false, "caught up", connectionString, logs, Alive);
            Assert.True(idle < s_idleRestartLimit, $"restarting the server under an idle pipeline took {idle.TotalSeconds:F1} s");

            var committedAtLastRestart = 0L;
            foreach (var immediate in new[] { false, true, false, true })
            {
                var transactions = await workload.RunPgbenchAsync(seconds: 3);
                var behind = await workload.ScalarAsync<decimal>($"SELECT pg_current_wal_lsn() - confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = '{Slot}'");
                await RestartAndReconnectAsync(server, immediate, $"{transactions} pgbench transactions, slot {behind} WAL bytes behind", connectionString, logs, Alive);
                committedAtLastRestart = pipeline.CommittedChanges;
            }

            await workload.RunPgbenchAsync(seconds: 2);
            await workload.InsertMarkerAsync();
            await workload.WaitForMarkerAsync(Alive, TimeSpan.FromMinutes(3));
            Assert.True(pipeline.CommittedChanges > committedAtLastRestart, "the pipeline committed nothing after the last restart");
            await stop.CancelAsync();
            await running;
        }
        finally
        {
            await stop.CancelAsync();
            await Task.WhenAny(running);
        }

        var rows = await workload.AssertChangelogMatchesAuditAsync(minimumRows: 1000);
        output.WriteLine($"{rows} changelog rows match the audit trail; {pipeline.CommittedChanges} changes committed by the pipeline");
        Assert.DoesNotContain(logs.Entries, e => e.Level >= LogLevel.Critical);
    }

    /// <summary>Restarts the server, checks the pipeline survived it and waits until it streams again; returns how long that took.</summary>
    private async Task<TimeSpan> RestartAndReconnectAsync(
        LocalPostgresServer server, bool immediate, string state, string connectionString, RecordingLoggerFactory logs, Func<Task> alive)
    {
        var reconnects = Reconnects(logs).Count;
        var clock = Stopwatch.StartNew();
        await server.RestartAsync(immediate);
        var restarted = clock.Elapsed;
        await alive();
        await WaitForStreamingAsync(connectionString, alive);
        var streaming = clock.Elapsed;

        var retried = Reconnects(logs).Skip(reconnects).ToList();
        output.WriteLine($"-m {(immediate ? "immediate" : "fast")} ({state}): restarted in {restarted.TotalSeconds:F1} s, streaming again after {streaming.TotalSeconds:F1} s; retried:");
        foreach (var entry in retried)
            output.WriteLine("    " + Describe(entry.Exception));
        Assert.NotEmpty(retried);
        return streaming;
    }

    private static async Task WaitUntilCaughtUpAsync(AuditedWorkload workload, WalPipeline pipeline, Func<Task> alive)
    {
        var changes = await workload.ScalarAsync<long>("SELECT count(*) FROM audit");
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (pipeline.CommittedChanges < changes)
        {
            await alive();
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"The pipeline committed {pipeline.CommittedChanges} of {changes} changes in 60 s.");
            await Task.Delay(50);
        }
    }

    private static async Task WaitForStreamingAsync(string connectionString, Func<Task> alive)
    {
        try
        {
            await PipelineHostProcess.WaitForSlotAsync(connectionString, Slot);
        }
        catch (TimeoutException)
        {
            await alive();
            throw;
        }
    }

    private static List<RecordingLoggerFactory.Entry> Reconnects(RecordingLoggerFactory logs) =>
        logs.Entries.Where(e => e.EventId.Id == ReconnectingEventId).ToList();

    private static string Describe(Exception? error)
    {
        var parts = new List<string>();
        for (var e = error; e is not null; e = e.InnerException)
            parts.Add($"{e.GetType().Name}: {e.Message.ReplaceLineEndings(" ")}");
        return string.Join(" <- ", parts);
    }
}
