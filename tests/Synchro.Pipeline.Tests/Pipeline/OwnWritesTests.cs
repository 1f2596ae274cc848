using Synchro.Pipeline.LocalPostgres;
using Synchro.Pipeline.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Synchro.Pipeline.Tests.Pipeline;

/// <summary>
/// Invariant 10: the pipeline never consumes its own writes. With the changelog in the source database and a publication
/// that also covers the sidecar tables, an idle database costs one heartbeat per interval, and the changelog stays exact
/// under load; the writes carry the pipeline's replication origin.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class OwnWritesTests(PostgresServerFixture postgres, ITestOutputHelper output)
{
    private static readonly TimeSpan s_heartbeat = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan s_idle = TimeSpan.FromSeconds(30);

    // A heartbeat round: the emitted message, and the changelog transaction that persists its position (an UPDATE of one
    // row, a full-page image of that page after a checkpoint at most). Measured: about 400 bytes; the loop it replaces
    // wrote 15,000 bytes a second.
    private const long WalPerHeartbeat = 10_000;

    public static TheoryData<string> Publications => ["FOR ALL TABLES", "FOR TABLES IN SCHEMA public"];

    [Theory]
    [MemberData(nameof(Publications))]
    public async Task An_idle_database_costs_one_heartbeat_per_interval_when_the_publication_covers_the_changelog(string publication)
    {
        // A server of its own, without autovacuum, so that all the WAL it writes while idle is the pipeline's.
        await using var server = await LocalPostgresServer.StartAsync(new LocalPostgresOptions { Settings = { ["autovacuum"] = "off" } });
        var connectionString = await server.CreateDatabaseAsync("own_writes");
        await Sql.ExecuteAsync(connectionString, PipelineHarness.Schema);
        await Sql.ExecuteAsync(connectionString, $"DROP PUBLICATION {PipelineHarness.Publication}; CREATE PUBLICATION {PipelineHarness.Publication} {publication}");
        await using var harness = PipelineHarness.Attach(connectionString, "slot_own_writes", connectionString);
        var options = harness.Options();
        options.HeartbeatInterval = s_heartbeat;
        await harness.StartAsync(options);

        await harness.ExecuteAsync("INSERT INTO orders (id, user_id) SELECT gen_random_uuid(), 'u' || (n % 7) FROM generate_series(1, 5001) n");
        await harness.WaitForChangelogAsync(5001, TimeSpan.FromSeconds(60));
        var before = harness.Pipeline!.GetStatus();
        var walBefore = await OperationsSql.CurrentWalAsync(harness.ConnectionString);

        await Task.Delay(s_idle);

        var after = harness.Pipeline.GetStatus();
        var wal = await OperationsSql.CurrentWalAsync(harness.ConnectionString) - walBefore;
        var batches = after.Batches - before.Batches;
        output.WriteLine($"{publication}: {s_idle.TotalSeconds} s idle: {batches} changelog commits, {wal} WAL bytes, {after.Transactions - before.Transactions} transactions");
        var heartbeats = (long)(s_idle / s_heartbeat) + 2;
        // A heartbeat's commit moves the position but counts as no batch; the loop this replaces committed 44 a second.
        Assert.InRange(batches, 0, heartbeats);
        Assert.InRange(wal, 1, heartbeats * WalPerHeartbeat);
        Assert.True(await OperationsSql.PersistedAsync(harness.ConnectionString, harness.Slot) > walBefore, "no heartbeat moved the position while idle");
        Assert.Equal(0, after.ChangesCommitted - before.ChangesCommitted);
        Assert.Equal(5001, (await harness.ChangelogAsync()).Count);
        // The changelog writes carried the pipeline's origin: the server tracked its progress past them.
        Assert.True(await harness.ScalarAsync<bool>(
            $"SELECT s.local_lsn > '0/0' FROM pg_replication_origin_status s JOIN pg_replication_origin o ON o.roident = s.local_id WHERE o.roname = 'synchro_pipeline.{harness.Slot}'"),
            "the writer's transactions carry no replication origin");
    }

    [Fact]
    public async Task Under_pgbench_load_with_a_publication_for_all_tables_the_changelog_is_exactly_the_audit_trail()
    {
        var connectionString = await postgres.CreateDatabaseAsync("own_writes_audited");
        using var workload = await AuditedWorkload.CreateAsync(postgres.Server, connectionString);
        await Sql.ExecuteAsync(connectionString, $"DROP PUBLICATION {AuditedWorkload.Publication}; CREATE PUBLICATION {AuditedWorkload.Publication} FOR ALL TABLES");
        var harness = PipelineHarness.Attach(connectionString, "slot_own_writes_audited", connectionString);
        await using (harness)
        {
            var options = harness.Options();
            options.PublicationName = AuditedWorkload.Publication;
            options.Tables = AuditedWorkload.Registry();
            options.HeartbeatInterval = TimeSpan.FromSeconds(1);
            await harness.StartAsync(options);

            var transactions = await workload.RunPgbenchAsync(seconds: 10, rate: 400);
            await workload.InsertMarkerAsync();
            await workload.WaitForMarkerAsync(() => harness.Running.IsCompleted ? harness.Running : Task.CompletedTask, TimeSpan.FromMinutes(2));
            var status = harness.Pipeline!.GetStatus();
            output.WriteLine($"{transactions} pgbench transactions; the pipeline committed {status.Transactions} source transactions in {status.Batches} changelog commits");
            // Every changelog commit would otherwise come back as a transaction of its own, and be answered by another.
            Assert.True(status.Transactions <= transactions + 1, $"{status.Transactions} transactions committed for {transactions} pgbench transactions");
        }

        var rows = await workload.AssertChangelogMatchesAuditAsync(minimumRows: 1000);
        output.WriteLine($"{rows} changelog rows match the audit trail");
        // The origin is dropped at stop: it would hold one of the server's max_replication_slots progress slots for good.
        Assert.Equal(0L, await Sql.ScalarAsync<long>(connectionString, "SELECT count(*) FROM pg_replication_origin WHERE roname LIKE 'synchro_pipeline.slot_own_writes_audited%'"));
    }

    [Fact]
    public async Task Without_a_free_origin_progress_slot_the_pipeline_warns_and_goes_on_untagged()
    {
        await using var harness = await CreateAsync("FOR ALL TABLES", "own_writes_no_origin_slot");
        // The origins' progress slots: their own setting since 18, the replication slots' before.
        var setting = await harness.ScalarAsync<string>(
            "SELECT CASE WHEN current_setting('server_version_num')::int >= 180000 THEN 'max_active_replication_origins' ELSE 'max_replication_slots' END");
        var free = await harness.ScalarAsync<int>($"SELECT current_setting('{setting}')::int - (SELECT count(*) FROM pg_replication_origin_status)::int");
        // Every progress slot taken by an origin that was used once (the tests run one at a time on this server).
        await harness.ExecuteAsync($"SELECT pg_replication_origin_create('filler_' || n) FROM generate_series(1, {free}) n");
        await harness.ExecuteAsync("""
            DO $$ DECLARE o text; BEGIN
                FOR o IN SELECT roname FROM pg_replication_origin WHERE roname LIKE 'filler_%' LOOP
                    PERFORM pg_replication_origin_session_setup(o);
                    PERFORM pg_replication_origin_session_reset();
                END LOOP;
            END $$;
            """);
        try
        {
            using var logs = new RecordingLoggerFactory();
            var options = harness.Options();
            options.LoggerFactory = logs;
            await harness.StartAsync(options);
            await harness.ExecuteAsync("INSERT INTO orders (id, user_id) VALUES ('00000000-0000-0000-0000-0000000019a1', 'alice')");

            Assert.Equal(["user:alice orders 00000000-0000-0000-0000-0000000019a1 1"], await harness.WaitForChangelogAsync(1));
            // The initial snapshot load and the writer each tried.
            var warning = Assert.Single(logs.Entries, e => e.EventId.Id == 3005 && e.Category == "Synchro.Pipeline.Writer");
            Assert.Contains($"raise {setting}", warning.Message, StringComparison.Ordinal);
            await harness.StopAsync();
        }
        finally
        {
            await harness.ExecuteAsync("SELECT pg_replication_origin_drop(roname) FROM pg_replication_origin WHERE roname LIKE 'filler_%'");
        }
        // An origin that could not be set up is not left behind either.
        Assert.Equal(0L, await harness.ScalarAsync<long>($"SELECT count(*) FROM pg_replication_origin WHERE roname LIKE 'synchro_pipeline.{harness.Slot}%'"));
    }

    /// <summary>The demo schema with its publication made <paramref name="publication"/>; the changelog goes into the same database.</summary>
    private async Task<PipelineHarness> CreateAsync(string publication, string name)
    {
        var harness = await PipelineHarness.CreateAsync(postgres, name);
        await harness.ExecuteAsync($"DROP PUBLICATION {PipelineHarness.Publication}; CREATE PUBLICATION {PipelineHarness.Publication} {publication}");
        return harness;
    }
}
