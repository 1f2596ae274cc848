using Synchro.Pipeline.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Synchro.Pipeline.Tests.Pipeline;

/// <summary>
/// Invariant 1 on a partitioned table: a pipeline process killed with SIGKILL and restarted while pgbench writes across
/// list and hash partitions and moves rows between them writes exactly the changelog the audit trail implies (a move is a
/// key change: the record id holds the partition key), whether the publication sends the partitions under their own names
/// or under the root's.
/// </summary>
[Collection(PostgresCollection.Name)]
[Trait(TestCategories.Name, TestCategories.VersionSensitive)]
public sealed class PartitionedKillTests(PostgresServerFixture postgres, ITestOutputHelper output)
{
    private const int Kills = 3;

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Changelog_is_exactly_the_audit_trail_after_repeated_SIGKILL_while_rows_move_between_partitions(bool publishViaPartitionRoot)
    {
        var name = publishViaPartitionRoot ? "partitioned_kill_root" : "partitioned_kill_leaves";
        var slot = "slot_" + name;
        var connectionString = await postgres.CreateDatabaseAsync(name);
        using var workload = await PartitionedWorkload.CreateAsync(postgres.Server, connectionString, publishViaPartitionRoot);
        var random = new Random(publishViaPartitionRoot ? 20261208 : 20261209);

        var host = StartHost(connectionString, slot);
        try
        {
            await PipelineHostProcess.WaitForSlotAsync(connectionString, slot, host);
            var pgbench = workload.RunPgbenchAsync(seconds: 15, rate: 300);
            for (var kill = 0; kill < Kills; kill++)
            {
                await Task.Delay(random.Next(2000, 3500));
                await host.KillAsync();
                host.Dispose();
                host = StartHost(connectionString, slot);
                await PipelineHostProcess.WaitForSlotAsync(connectionString, slot, host);
            }
            Assert.False(pgbench.IsCompleted, "pgbench ended before the last kill");
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

        var (rows, moves) = await workload.AssertChangelogMatchesAuditAsync(minimumRows: 1000, minimumMoves: 300);
        output.WriteLine($"publish_via_partition_root = {publishViaPartitionRoot}: {rows} changelog rows, {moves} cross-partition updates");
    }

    private static PipelineHostProcess StartHost(string connectionString, string slot) =>
        PipelineHostProcess.Start(connectionString, slot, PartitionedWorkload.Publication, PartitionedWorkload.Table, PartitionedWorkload.OwnerColumn, maxBatchRows: 50, idColumns: PartitionedWorkload.IdColumns);
}
