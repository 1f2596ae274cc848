using Synchro.Pipeline.Tests.Infrastructure;

namespace Synchro.Pipeline.Tests.Pipeline;

/// <summary>
/// Invariant 1 under SIGKILL: a pipeline process killed at random moments under a pgbench workload
/// and restarted each time writes exactly the changelog that an independent trigger-written audit
/// trail implies — nothing missing, nothing twice, each record's rows in order.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class ExactlyOnceTests(PostgresServerFixture postgres)
{
    private const string Slot = "slot_exactly_once";
    private const int Kills = 6;

    [Fact]
    public async Task Changelog_is_exactly_the_audit_trail_after_repeated_SIGKILL()
    {
        var connectionString = await postgres.CreateDatabaseAsync("exactly_once");
        using var workload = await AuditedWorkload.CreateAsync(postgres.Server, connectionString);
        var random = new Random(20261124);

        var host = StartHost(connectionString);
        try
        {
            await PipelineHostProcess.WaitForSlotAsync(connectionString, Slot);
            var pgbench = workload.RunPgbenchAsync(seconds: 12, rate: 400);
            for (var kill = 0; kill < Kills; kill++)
            {
                await Task.Delay(random.Next(700, 2500));
                await host.KillAsync();
                host.Dispose();
                host = StartHost(connectionString);
            }
            await pgbench;

            await workload.InsertMarkerAsync();
            await workload.WaitForMarkerAsync(
                () => host.HasExited ? throw new InvalidOperationException($"The pipeline process exited with code {host.ExitCode}.") : Task.CompletedTask,
                TimeSpan.FromMinutes(3));
        }
        finally
        {
            host.Dispose();
        }

        await workload.AssertChangelogMatchesAuditAsync(minimumRows: 1000);
    }

    private static PipelineHostProcess StartHost(string connectionString) =>
        PipelineHostProcess.Start(connectionString, Slot, AuditedWorkload.Publication, AuditedWorkload.Table, AuditedWorkload.OwnerColumn, maxBatchRows: 50);
}
