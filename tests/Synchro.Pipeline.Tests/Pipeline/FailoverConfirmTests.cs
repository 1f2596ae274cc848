using System.Diagnostics;
using Npgsql;
using Synchro.Pipeline.Protocol;
using Synchro.Pipeline.Registry;
using Synchro.Pipeline.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Synchro.Pipeline.Tests.Pipeline;

/// <summary>
/// The failover confirm rule (docs/failover.md), at the one instant it matters: a standby that has the source transaction but
/// not yet the changelog commit that recorded it. With the rule the slot is not confirmed past the transaction, the synced slot
/// on the standby stays behind it, and after the promotion the pipeline writes it; without the rule the standby syncs the slot
/// past it, and the promoted server's changelog lacks it for good (the pipeline refuses the position, invariant 8).
/// </summary>
public sealed class FailoverConfirmTests(ITestOutputHelper output)
{
    private const string Slot = "failover_confirm";

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task A_transaction_whose_changelog_commit_the_standby_lacks_is_written_after_the_promotion_only_with_the_rule(bool rule)
    {
        await using var cluster = await FailoverCluster.StartAsync("app");
        await Sql.ExecuteAsync(cluster.OnPrimary, """
            CREATE TABLE orders (id int PRIMARY KEY, user_id text NOT NULL, deleted_at timestamptz);
            CREATE PUBLICATION failover_pub FOR TABLE orders;
            """);
        var logs = new RecordingLoggerFactory();
        var options = new WalPipelineOptions
        {
            ConnectionString = cluster.MultiHost,
            SlotName = Slot,
            PublicationName = "failover_pub",
            Tables = new TableRegistry().Add(new TableRegistration("orders") { OwnerColumn = "user_id" }),
            InitialSnapshot = false,
            Failover = true,
            ConfirmAfterStandbys = rule,
            StatusInterval = TimeSpan.FromSeconds(1),
            MaxReconnectDelay = TimeSpan.FromSeconds(1),
            LoggerFactory = logs,
        };
        await using var pipeline = new WalPipeline(options);
        using var stop = new CancellationTokenSource();
        var running = pipeline.RunAsync(stop.Token);
        try
        {
            // The pipeline creates its slot with FAILOVER; row 1 comes after it.
            await FailoverCluster.WaitUntilAsync(cluster.OnPrimary, $"SELECT failover FROM pg_replication_slots WHERE slot_name = '{Slot}'", "the pipeline to create its failover slot");
            await Sql.ExecuteAsync(cluster.OnPrimary, "INSERT INTO orders VALUES (1, 'a')");
            await WaitForChangelogAsync(cluster.OnPrimary, "1", running);
            // The multi-host string lists the standby first: the replication connection went to the primary all the same.
            Assert.True(await Sql.ScalarAsync<bool>(cluster.OnPrimary, $"SELECT active FROM pg_replication_slots WHERE slot_name = '{Slot}'"));
            await cluster.WaitForSyncedSlotAsync(Slot, i => Sql.ExecuteAsync(cluster.OnPrimary, $"INSERT INTO orders VALUES ({1000 + i}, 'warm-up')"));

            // The writer waits on a lock while the standby receives the source transaction of row 2, and no more.
            await using var blocker = new NpgsqlConnection(cluster.OnPrimary);
            await blocker.OpenAsync();
            await using var blocking = await blocker.BeginTransactionAsync();
            await using (var lockTable = new NpgsqlCommand("LOCK TABLE sync_changelog IN EXCLUSIVE MODE", blocker, blocking))
                await lockTable.ExecuteNonQueryAsync();
            await Sql.ExecuteAsync(cluster.OnPrimary, "INSERT INTO orders VALUES (2, 'b')");
            var second = await Sql.ScalarAsync<string>(cluster.OnPrimary, "SELECT pg_current_wal_flush_lsn()::text");
            // Row 2 has reached the writer, which waits for the lock (the server sent it once the standby had it).
            await FailoverCluster.WaitUntilAsync(cluster.OnPrimary, "SELECT EXISTS (SELECT FROM pg_locks WHERE NOT granted AND relation = 'sync_changelog'::regclass)", "the writer to wait for the lock");
            await cluster.WaitForStandbyAsync();
            cluster.Proxy.Hold();
            await blocking.RollbackAsync();

            await WaitForChangelogAsync(cluster.OnPrimary, "2", running);
            // Polled here: the row is visible a moment before the committer takes its position.
            var committing = Stopwatch.StartNew();
            while (pipeline.GetStatus().CommittedLsn < Lsn.Parse(second))
            {
                if (running.IsCompleted)
                    await running;
                if (committing.Elapsed > TimeSpan.FromSeconds(60))
                    throw new TimeoutException($"Waited 60 s for the pipeline to commit row 2 ({second}); it is at {pipeline.GetStatus().CommittedLsn}.");
                await Task.Delay(20);
            }
            var primarySlot = $"SELECT confirmed_flush_lsn >= '{second}'::pg_lsn FROM pg_replication_slots WHERE slot_name = '{Slot}'";
            if (!rule)
            {
                // Confirmed at once, and synced: the standby has the source transaction (the slot sync waits for no more).
                await FailoverCluster.WaitUntilAsync(cluster.OnPrimary, primarySlot, "the slot to be confirmed past row 2");
                await FailoverCluster.WaitUntilAsync(cluster.OnStandby, $"SELECT confirmed_flush_lsn >= '{second}'::pg_lsn FROM pg_replication_slots WHERE slot_name = '{Slot}' AND synced", "the standby to sync the slot past row 2");
            }
            Assert.Equal(!rule, await Sql.ScalarAsync<bool>(cluster.OnPrimary, primarySlot));

            await cluster.Primary.KillAsync();
            await cluster.Standby.PromoteAsync();
            await Sql.ExecuteAsync(cluster.OnStandby, "INSERT INTO orders VALUES (3, 'c')");
            Assert.False(await Sql.ScalarAsync<bool>(cluster.OnStandby, "SELECT EXISTS (SELECT FROM sync_changelog WHERE record_id = '2')"));

            if (rule)
            {
                await WaitForChangelogAsync(cluster.OnStandby, "3", running);
                var records = await Sql.RowsAsync(cluster.OnStandby, "SELECT record_id FROM sync_changelog WHERE record_id::int < 1000 ORDER BY seq");
                Assert.Equal(["1", "2", "3"], records);
                await stop.CancelAsync();
                await running;
                output.WriteLine($"with the rule: changelog {string.Join(", ", records)} after the promotion");
            }
            else
            {
                // Invariant 8 sees the gap: the synced slot was confirmed past the changelog's position.
                var refused = await Assert.ThrowsAsync<WalPipelineConfigurationException>(() => running.WaitAsync(TimeSpan.FromSeconds(90)));
                Assert.True(refused.RefusesPosition);
                Assert.Contains("has been confirmed up to", refused.Message, StringComparison.Ordinal);
                // The operator accepts the gap as the message offers: row 2 is lost, row 3 arrives.
                await Sql.ExecuteAsync(cluster.OnStandby, $"DELETE FROM sync_wal_position WHERE slot_name = '{Slot}'");
                await using var again = new WalPipeline(options);
                var rerun = again.RunAsync(stop.Token);
                await WaitForChangelogAsync(cluster.OnStandby, "3", rerun);
                var records = await Sql.RowsAsync(cluster.OnStandby, "SELECT record_id FROM sync_changelog WHERE record_id::int < 1000 ORDER BY seq");
                Assert.Equal(["1", "3"], records);
                Assert.True(await Sql.ScalarAsync<bool>(cluster.OnStandby, "SELECT EXISTS (SELECT FROM orders WHERE id = 2)"));
                await stop.CancelAsync();
                await rerun;
                output.WriteLine($"without the rule: refused ({refused.Message[..160]}...); after accepting the gap the changelog is {string.Join(", ", records)}: row 2, which the promoted server has, is lost");
            }
        }
        finally
        {
            await stop.CancelAsync();
            await Task.WhenAny(running);
        }
    }

    private static async Task WaitForChangelogAsync(string connectionString, string record, Task running)
    {
        var deadline = DateTime.UtcNow.AddSeconds(90);
        while (!await InChangelogAsync(connectionString, record))
        {
            if (running.IsCompleted)
                await running;
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"Record {record} did not reach the changelog in 90 s.");
            await Task.Delay(50);
        }
    }

    private static async Task<bool> InChangelogAsync(string connectionString, string record)
    {
        try
        {
            return await Sql.ScalarAsync<bool>(connectionString, $"SELECT EXISTS (SELECT FROM sync_changelog WHERE record_id = '{record}')");
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UndefinedTable)
        {
            // Not migrated yet.
            return false;
        }
    }
}
