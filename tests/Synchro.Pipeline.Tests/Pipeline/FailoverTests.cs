using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Synchro.Pipeline.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Synchro.Pipeline.Tests.Pipeline;

/// <summary>
/// Exactly once across a primary failover (docs/failover.md): pgbench writes to a PostgreSQL 17 primary whose failover slot the
/// pipeline consumes through a multi-host connection string; the primary is killed with SIGKILL mid-load, its standby promoted,
/// and the pipeline goes on by itself on the promoted server. The changelog there must be exactly what the audit trail that
/// survived on it implies: nothing missing, nothing twice, in commit order.
/// </summary>
public sealed class FailoverTests(ITestOutputHelper output)
{
    private const string Slot = "failover_audited";

    [Fact]
    public async Task Changelog_is_exactly_the_surviving_audit_trail_after_the_primary_is_killed_under_load_and_its_standby_promoted()
    {
        await using var cluster = await FailoverCluster.StartAsync("audited");
        using var workload = await AuditedWorkload.CreateAsync(cluster.Primary, cluster.OnPrimary);
        var logs = new RecordingLoggerFactory();
        await using var pipeline = new WalPipeline(new WalPipelineOptions
        {
            ConnectionString = cluster.MultiHost,
            SlotName = Slot,
            PublicationName = AuditedWorkload.Publication,
            Tables = AuditedWorkload.Registry(),
            InitialSnapshot = false,
            Failover = true,
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
            // The pipeline created its slot with FAILOVER.
            await FailoverCluster.WaitUntilAsync(cluster.OnPrimary, $"SELECT failover FROM pg_replication_slots WHERE slot_name = '{Slot}'", "the pipeline to create its failover slot");
            await cluster.WaitForSyncedSlotAsync(Slot, i => Sql.ExecuteAsync(cluster.OnPrimary, $"INSERT INTO audited_orders (id, user_id) VALUES ({-1000 - i}, 'u1')"));

            using var load = workload.StartPgbench(seconds: 30, rate: 400);
            await WaitAsync(() => Task.FromResult(pipeline.CommittedChanges > 1000), Alive, "the pipeline to commit 1,000 changes under load");
            var clock = Stopwatch.StartNew();
            await cluster.Primary.KillAsync();
            var committedAtDeath = pipeline.CommittedChanges;
            await load.WaitForExitAsync();
            await cluster.Standby.PromoteAsync();
            var promoted = clock.Elapsed;

            using var promotedWorkload = await AuditedWorkload.AttachAsync(cluster.Standby, cluster.OnStandby);
            using var after = promotedWorkload.StartPgbench(seconds: 4, rate: 300);
            await WaitAsync(() => Task.FromResult(pipeline.CommittedChanges > committedAtDeath), Alive, "the pipeline to write on the promoted server");
            var writing = clock.Elapsed;
            await after.WaitForExitAsync();
            Assert.Equal(0, after.ExitCode);

            await promotedWorkload.InsertMarkerAsync();
            await promotedWorkload.WaitForMarkerAsync(Alive, TimeSpan.FromMinutes(2));
            await stop.CancelAsync();
            await running;

            var rows = await promotedWorkload.AssertChangelogMatchesAuditAsync(minimumRows: 1000);
            var audited = await promotedWorkload.ScalarAsync<long>("SELECT count(*) FROM audit");
            output.WriteLine($"{rows} changelog rows ({audited} audited changes) match the audit trail that survived on the promoted server; "
                + $"{committedAtDeath} changes committed before the primary died, {pipeline.CommittedChanges} in all");
            output.WriteLine($"primary killed -> standby promoted {promoted.TotalSeconds:F2} s -> pipeline writing again {writing.TotalSeconds:F2} s after the death "
                + $"({(writing - promoted).TotalSeconds:F2} s after the promotion)");
        }
        finally
        {
            await stop.CancelAsync();
            await Task.WhenAny(running);
        }
        Assert.DoesNotContain(logs.Entries, e => e.Level >= LogLevel.Critical);
    }

    private static async Task WaitAsync(Func<Task<bool>> condition, Func<Task> alive, string what)
    {
        var deadline = DateTime.UtcNow.AddSeconds(90);
        while (!await condition())
        {
            await alive();
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"Waited 90 s for {what}.");
            await Task.Delay(10);
        }
    }
}
