using Synchro.Pipeline.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Synchro.Pipeline.Tests.Pipeline;

/// <summary>
/// Invariant 1 under SIGKILL: a pipeline process killed at random moments under a pgbench workload
/// and restarted each time writes exactly the changelog that an independent trigger-written audit
/// trail implies — nothing missing, nothing twice, each record's rows in order.
/// </summary>
[Collection(PostgresCollection.Name)]
[Trait(TestCategories.Name, TestCategories.VersionSensitive)]
public sealed class ExactlyOnceTests(PostgresServerFixture postgres, ITestOutputHelper output)
{
    private const string Slot = "slot_exactly_once";
    private const int Kills = 6;

    /// <summary>
    /// With owners too long for the changelog mixed in, and one bucket the changelog refuses (a CHECK constraint), so kills
    /// also land while the writer isolates refused changes: those end in <c>sync_rule_failures</c>, exactly once too.
    /// </summary>
    [Fact]
    public async Task Changelog_is_exactly_the_audit_trail_after_repeated_SIGKILL()
    {
        var connectionString = await postgres.CreateDatabaseAsync("exactly_once");
        using var workload = await AuditedWorkload.CreateAsync(postgres.Server, connectionString, refusedBucket: "user:u8");
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
                host.ThrowIfExitedAsync,
                TimeSpan.FromMinutes(3));
        }
        finally
        {
            host.Dispose();
        }

        var rows = await workload.AssertChangelogMatchesAuditAsync(minimumRows: 1000);
        output.WriteLine($"{rows} changelog rows; rule failures: {await workload.ScalarAsync<long>("SELECT count(*) FROM sync_rule_failures WHERE error_text LIKE '%MaxBucketIdBytes%'")} over-long owners, "
            + $"{await workload.ScalarAsync<long>("SELECT count(*) FROM sync_rule_failures WHERE error_text LIKE 'the changelog refused%'")} refused");
    }

    /// <summary>
    /// The same, with streamed large transactions (committed, aborted, with a rolled-back savepoint) and two-phase
    /// transactions (small and streamed, committed or rolled back a moment after PREPARE) in the workload, so kills land
    /// mid-stream, mid-replay and between PREPARE and COMMIT PREPARED.
    /// </summary>
    [Fact]
    public async Task Changelog_is_exactly_the_audit_trail_after_repeated_SIGKILL_with_streamed_and_prepared_transactions()
    {
        const string slot = "slot_exactly_once_streamed";
        var connectionString = await postgres.CreateDatabaseAsync("exactly_once_streamed");
        using var workload = await AuditedWorkload.CreateAsync(postgres.Server, connectionString);
        await Sql.ExecuteAsync(connectionString, "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET logical_decoding_work_mem = %L', current_database(), '64kB'); END $$");
        var random = new Random(20261125);

        var host = StartStreamingHost(connectionString, slot);
        try
        {
            await PipelineHostProcess.WaitForSlotAsync(connectionString, slot);
            var pgbench = workload.RunPgbenchAsync(seconds: 15, rate: 150, largeAndPrepared: true);
            for (var kill = 0; kill < Kills; kill++)
            {
                await Task.Delay(random.Next(700, 2500));
                await host.KillAsync();
                host.Dispose();
                host = StartStreamingHost(connectionString, slot);
            }
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

        var rows = await workload.AssertChangelogMatchesAuditAsync(minimumRows: 5000);
        output.WriteLine($"{rows} changelog rows; audit rows of streamed transactions {await workload.ScalarAsync<long>("SELECT count(*) FROM audit WHERE record_id::int BETWEEN 100000 AND 199999")}, "
            + $"of prepared ones {await workload.ScalarAsync<long>("SELECT count(*) FROM audit WHERE record_id::int >= 200000")}");
        Assert.Equal(0L, await workload.ScalarAsync<long>("SELECT count(*) FROM pg_prepared_xacts"));
        Assert.Equal(0L, await workload.ScalarAsync<long>("SELECT count(*) FROM sync_prepared_transactions"));
        var streamed = await workload.ScalarAsync<long>($"SELECT stream_txns FROM pg_stat_replication_slots WHERE slot_name = '{slot}'");
        Assert.True(streamed > 0, "the server streamed no transaction");
    }

    private static PipelineHostProcess StartHost(string connectionString) =>
        PipelineHostProcess.Start(connectionString, Slot, AuditedWorkload.Publication, AuditedWorkload.Table, AuditedWorkload.OwnerColumn, maxBatchRows: 50);

    private static PipelineHostProcess StartStreamingHost(string connectionString, string slot) =>
        PipelineHostProcess.Start(connectionString, slot, AuditedWorkload.Publication, AuditedWorkload.Table, AuditedWorkload.OwnerColumn, maxBatchRows: 200, twoPhase: true);
}
