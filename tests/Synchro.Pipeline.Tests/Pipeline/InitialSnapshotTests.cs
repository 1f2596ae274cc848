using Microsoft.Extensions.Logging;
using Npgsql;
using Synchro.Pipeline.Buckets;
using Synchro.Pipeline.Changelog;
using Synchro.Pipeline.Registry;
using Synchro.Pipeline.Replication;
using Synchro.Pipeline.Tests.Infrastructure;
using Synchro.Pipeline.Diagnostics;

namespace Synchro.Pipeline.Tests.Pipeline;

/// <summary>
/// Starting on a database that already has rows: the new slot's exported snapshot populates the bucket edges (no
/// changelog rows), exactly as of the slot's start, in chunks; a load that did not finish is redone whole.
/// </summary>
[Collection(PostgresCollection.Name)]
[Trait(TestCategories.Name, TestCategories.VersionSensitive)]
public sealed class InitialSnapshotTests(PostgresServerFixture postgres)
{
    private const string O1 = "00000000-0000-0000-0000-000000000001";
    private const string O2 = "00000000-0000-0000-0000-000000000002";
    private const string O3 = "00000000-0000-0000-0000-000000000003";
    private const string O4 = "00000000-0000-0000-0000-000000000004";
    private const string O5 = "00000000-0000-0000-0000-000000000005";
    private const string O6 = "00000000-0000-0000-0000-000000000006";

    private const string ExistingRows = $"""
        INSERT INTO orders (id, user_id) VALUES ('{O1}', 'alice'), ('{O2}', 'bob'), ('{O3}', NULL);
        INSERT INTO orders (id, user_id, deleted_at) VALUES ('{O4}', 'alice', now());
        INSERT INTO order_lines VALUES (1, '{O1}', 1), (2, '{O2}', 2), (3, '{O3}', 3);
        INSERT INTO categories VALUES (5, 'books'), (6, 'music');
        INSERT INTO categories VALUES (7, 'gone', now());
        INSERT INTO unregistered VALUES (1, 'alice');
        """;

    // What a streamed history of ExistingRows would have left: O3 has no owner (orders has no global fallback), so its
    // line has none either; soft-deleted O4 and category 7 are in no bucket; unregistered tables have no edges.
    private static readonly string[] s_existingEdges =
    [
        "categories 5 global", "categories 6 global",
        $"order_lines 1 user:alice", $"order_lines 2 user:bob",
        $"orders {O1} user:alice", $"orders {O2} user:bob",
    ];

    [Fact]
    public async Task Existing_rows_get_their_edges_from_the_slots_snapshot_so_a_later_owner_change_deletes_from_the_old_bucket()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "snapshot_edges");
        await harness.ExecuteAsync(ExistingRows);

        await harness.StartAsync();

        Assert.Equal(s_existingEdges, await EdgesAsync(harness));
        Assert.Empty(await harness.ChangelogAsync());
        // Rows read: 3 live orders, 3 lines, 2 live categories.
        Assert.Equal(8L, harness.Pipeline!.GetStatus().SnapshotRows);
        Assert.True(await harness.ScalarAsync<long>($"SELECT confirmed_lsn FROM sync_wal_position WHERE slot_name = '{harness.Slot}'") > 0);

        // One transaction, so one batch: the cascade's rows come after its rows.
        await harness.ExecuteAsync($"UPDATE orders SET user_id = 'carol' WHERE id = '{O1}'; UPDATE order_lines SET quantity = 9 WHERE id = 2; UPDATE categories SET name = 'film' WHERE id = 6;");

        var rows = await harness.WaitForChangelogAsync(6);
        Assert.Equal(
            [
                $"user:carol orders {O1} 1", $"user:alice orders {O1} 3",
                "user:bob order_lines 2 2",
                "global categories 6 2",
                // Line 1 follows its order (CascadeParentMoves), after the rows of the batch that moved it.
                "user:carol order_lines 1 1", "user:alice order_lines 1 3",
            ],
            rows);
        Assert.Equal(
            ["categories 5 global", "categories 6 global", "order_lines 1 user:carol", "order_lines 2 user:bob", $"orders {O1} user:carol", $"orders {O2} user:bob"],
            await EdgesAsync(harness));
    }

    [Fact]
    public async Task Rows_committed_while_the_slot_is_created_are_in_the_snapshot_and_rows_committed_after_it_are_streamed_once()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "snapshot_concurrent");
        await harness.ExecuteAsync(ExistingRows);

        // A transaction running when the slot is created: the creation waits for it, so it commits before the consistent point.
        await using var running = new NpgsqlConnection(harness.ConnectionString);
        await running.OpenAsync();
        await using var transaction = await running.BeginTransactionAsync();
        await using (var insert = new NpgsqlCommand($"INSERT INTO orders (id, user_id) VALUES ('{O5}', 'dave')", running, transaction))
            await insert.ExecuteNonQueryAsync();

        var options = harness.Options();
        var inserted = 0;
        // Right after the slot exists (its first chunk is read): a row committed from another connection during the load.
        options.SnapshotProgress = _ =>
        {
            if (Interlocked.Exchange(ref inserted, 1) == 0)
                Sql.ExecuteAsync(harness.ConnectionString, $"INSERT INTO orders (id, user_id) VALUES ('{O6}', 'erin')").GetAwaiter().GetResult();
        };
        var starting = harness.StartAsync(options);

        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!await harness.ScalarAsync<bool>($"SELECT EXISTS (SELECT FROM pg_replication_slots WHERE slot_name = '{harness.Slot}')"))
        {
            Assert.True(DateTime.UtcNow < deadline, "the slot was not being created");
            Assert.False(starting.IsCompleted, "the pipeline started without waiting for the running transaction");
            await Task.Delay(20);
        }
        await transaction.CommitAsync();
        await starting;

        var rows = await harness.WaitForChangelogAsync(1);
        Assert.Equal([$"user:erin orders {O6} 1"], rows);
        Assert.Equal([.. s_existingEdges, $"orders {O5} user:dave", $"orders {O6} user:erin"], (await EdgesAsync(harness)).Order(StringComparer.Ordinal));

        // Both are known where they are: moving them deletes from the old bucket, once.
        await harness.ExecuteAsync($"UPDATE orders SET user_id = 'frank' WHERE id IN ('{O5}', '{O6}')");
        rows = await harness.WaitForChangelogAsync(5);
        Assert.Equal(5, rows.Count);
        Assert.Equal(
            [$"user:erin orders {O6} 1", $"user:frank orders {O5} 1", $"user:dave orders {O5} 3", $"user:frank orders {O6} 1", $"user:erin orders {O6} 3"],
            rows);
    }

    [Fact]
    public async Task Skipping_the_initial_snapshot_leaves_existing_rows_without_edges()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "snapshot_skip");
        await harness.ExecuteAsync(ExistingRows);
        var options = harness.Options();
        options.InitialSnapshot = false;

        await harness.StartAsync(options);

        Assert.Empty(await EdgesAsync(harness));
        Assert.Equal(0L, harness.Pipeline!.GetStatus().SnapshotRows);
        await harness.ExecuteAsync($"UPDATE orders SET user_id = 'carol' WHERE id = '{O1}'");
        // Without the edge, the move cannot say where the record was; its line, in no bucket either, joins carol's.
        Assert.Equal([$"user:carol orders {O1} 1", "user:carol order_lines 1 1"], await harness.WaitForChangelogAsync(2));
    }

    [Fact]
    public async Task A_load_cancelled_after_its_first_chunk_leaves_nothing_and_the_next_start_redoes_it_whole_in_chunks()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "snapshot_cancel");
        await harness.ExecuteAsync("""
            INSERT INTO orders (id, user_id) SELECT md5(i::text)::uuid, 'u' || (i % 7) FROM generate_series(1, 1000) AS i;
            INSERT INTO order_lines SELECT i, md5(i::text)::uuid, 1 FROM generate_series(1, 1000, 10) AS i;
            """);
        const string ExpectedSql = """
            SELECT string_agg(e, '|' ORDER BY e COLLATE "C") FROM (
                SELECT 'orders ' || id || ' user:' || user_id AS e FROM orders
                UNION ALL SELECT 'order_lines ' || l.id || ' user:' || o.user_id FROM order_lines l JOIN orders o ON o.id = l.order_id) x
            """;
        var expected = await harness.ScalarAsync<string>(ExpectedSql);

        using var stop = new CancellationTokenSource();
        var firstRun = harness.Options(maxBatchRows: 100);
        firstRun.SnapshotProgress = p =>
        {
            if (p.TotalRows >= 100)
                stop.Cancel();
        };
        await using (var pipeline = new WalPipeline(firstRun))
        {
            await pipeline.RunAsync(stop.Token);
            Assert.Equal(WalPipelineState.Stopped, pipeline.GetStatus().State);
            Assert.Equal(100L, pipeline.GetStatus().SnapshotRows);
        }
        Assert.Equal(0L, await harness.ScalarAsync<long>("SELECT count(*) FROM sync_bucket_edges"));
        Assert.Equal(ChangelogStore.SnapshotPendingPosition, await harness.ScalarAsync<long>($"SELECT confirmed_lsn FROM sync_wal_position WHERE slot_name = '{harness.Slot}'"));
        Assert.True(await harness.ScalarAsync<bool>($"SELECT EXISTS (SELECT FROM pg_replication_slots WHERE slot_name = '{harness.Slot}')"));
        // The start-up checks refuse a slot whose walsender has not exited yet.
        while (await harness.ScalarAsync<bool>($"SELECT active FROM pg_replication_slots WHERE slot_name = '{harness.Slot}'"))
            await Task.Delay(20);

        using var logs = new RecordingLoggerFactory(LogLevel.Information);
        var chunks = new List<EdgeSnapshotProgress>();
        var secondRun = harness.Options(maxBatchRows: 100);
        secondRun.LoggerFactory = logs;
        var statuses = new List<(WalPipelineState State, long Rows)>();
        secondRun.SnapshotProgress = p =>
        {
            chunks.Add(p);
            var status = harness.Pipeline!.GetStatus();
            statuses.Add((status.State, status.SnapshotRows));
        };
        await harness.StartAsync(secondRun);

        Assert.Equal(expected, string.Join('|', (await EdgesAsync(harness)).Order(StringComparer.Ordinal)));
        Assert.Empty(await harness.ChangelogAsync());
        Assert.Contains(logs.Entries, e => e.EventId.Id == 1202);
        // Ten chunks of orders, then the table's end; lines: a full chunk, then an empty fetch ends it; categories is empty.
        Assert.Equal(
            [
                .. Enumerable.Range(1, 10).Select(i => $"public.orders {i * 100} {i * 100} False"), "public.orders 1000 1000 True",
                "public.order_lines 100 1100 False", "public.order_lines 100 1100 True",
                "public.categories 0 1100 True",
            ],
            chunks.Select(c => $"{c.Table} {c.TableRows} {c.TotalRows} {c.TableDone}"));
        Assert.Equal(chunks.Select(c => (WalPipelineState.Snapshotting, c.TotalRows)), statuses);
        Assert.Contains(logs.Entries, e => e.EventId.Id == 6002 && e.Message.StartsWith("Initial snapshot: public.orders done: 1000 rows", StringComparison.Ordinal));
        Assert.Contains(logs.Entries, e => e.EventId.Id == 6003 && e.Message.StartsWith("Initial snapshot committed: 1100 rows of 3 table(s) gave 1100 bucket edges and 0 rule failure(s)", StringComparison.Ordinal));

        // A restart with the position saved resumes: no second load.
        await harness.StopAsync();
        var thirdRun = harness.Options();
        thirdRun.SnapshotProgress = _ => Assert.Fail("a slot with a position was loaded again");
        await harness.StartAsync(thirdRun);
        Assert.Equal(0L, harness.Pipeline!.GetStatus().SnapshotRows);
        Assert.Equal(expected, string.Join('|', (await EdgesAsync(harness)).Order(StringComparer.Ordinal)));
    }

    [Fact]
    public async Task A_process_killed_during_the_load_leaves_nothing_and_the_next_start_loads_every_edge_once()
    {
        const string Slot = "slot_snapshot_kill";
        var connectionString = await postgres.CreateDatabaseAsync("snapshot_kill");
        await Sql.ExecuteAsync(connectionString, """
            CREATE TABLE items (id bigint PRIMARY KEY, owner text, deleted_at timestamptz);
            CREATE PUBLICATION items_pub FOR TABLE items;
            INSERT INTO items SELECT i, 'u' || (i % 100) FROM generate_series(1, 200000) AS i;
            """);
        const string Loading = "SELECT EXISTS (SELECT FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'FETCH FORWARD 100 FROM%')";

        using (var host = PipelineHostProcess.Start(connectionString, Slot, "items_pub", "items", "owner", maxBatchRows: 100))
        {
            var deadline = DateTime.UtcNow.AddSeconds(60);
            while (!await Sql.ScalarAsync<bool>(connectionString, Loading))
            {
                Assert.False(host.HasExited, "the pipeline process exited before its snapshot load");
                Assert.True(DateTime.UtcNow < deadline, "the snapshot load did not start in 60 s");
                await Task.Delay(10);
            }
            await host.KillAsync();
        }
        Assert.Equal(0L, await Sql.ScalarAsync<long>(connectionString, "SELECT count(*) FROM sync_bucket_edges"));
        Assert.Equal(ChangelogStore.SnapshotPendingPosition, await Sql.ScalarAsync<long>(connectionString, $"SELECT confirmed_lsn FROM sync_wal_position WHERE slot_name = '{Slot}'"));
        while (await Sql.ScalarAsync<bool>(connectionString, $"SELECT active FROM pg_replication_slots WHERE slot_name = '{Slot}'"))
            await Task.Delay(20);

        var options = new WalPipelineOptions
        {
            ConnectionString = connectionString,
            SlotName = Slot,
            PublicationName = "items_pub",
            Tables = new TableRegistry().Add(new TableRegistration("items") { OwnerColumn = "owner" }),
        };
        using var stop = new CancellationTokenSource();
        await using (var pipeline = new WalPipeline(options))
        {
            var running = pipeline.RunAsync(stop.Token);
            await PipelineHostProcess.WaitForSlotAsync(connectionString, Slot);
            await stop.CancelAsync();
            await running;
            Assert.Equal(200_000L, pipeline.GetStatus().SnapshotRows);
        }

        Assert.Equal(200_000L, await Sql.ScalarAsync<long>(connectionString, "SELECT count(*) FROM sync_bucket_edges"));
        Assert.Equal(0L, await Sql.ScalarAsync<long>(connectionString, """
            SELECT count(*) FROM (
                (SELECT 'items', id::text, 'user:' || owner FROM items EXCEPT SELECT table_name, record_id, bucket_id FROM sync_bucket_edges)
                UNION ALL
                (SELECT table_name, record_id, bucket_id FROM sync_bucket_edges EXCEPT SELECT 'items', id::text, 'user:' || owner FROM items)) x
            """));
        Assert.Equal(0L, await Sql.ScalarAsync<long>(connectionString, "SELECT count(*) FROM sync_changelog"));
    }

    [Fact]
    public async Task A_rule_failure_during_the_load_is_recorded_as_an_insert_and_the_load_goes_on()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "snapshot_rule_failure");
        await harness.ExecuteAsync(ExistingRows);

        await harness.StartAsync(harness.Options(new DefaultBucketAssigner(new FailingOrdersAssigner(O2))));

        Assert.Equal([.. s_existingEdges.Where(e => e != $"orders {O2} user:bob")], await EdgesAsync(harness));
        Assert.Equal(
            [$"orders {O2} 1 no bucket for {O2} {{\"id\": \"{O2}\", \"user_id\": \"bob\", \"deleted_at\": null}}"],
            await RowsAsync(harness, "SELECT table_name || ' ' || record_id || ' ' || operation || ' ' || error_text || ' ' || payload::text FROM sync_rule_failures ORDER BY id"));
        Assert.Empty(await harness.ChangelogAsync());
    }

    [Fact]
    public async Task A_slot_the_pipeline_did_not_create_is_streamed_from_with_a_warning_that_existing_rows_have_no_edges()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "snapshot_foreign_slot");
        await harness.ExecuteAsync(ExistingRows);
        await harness.ExecuteAsync($"SELECT pg_create_logical_replication_slot('{harness.Slot}', 'pgoutput')");
        using var logs = new RecordingLoggerFactory();
        var options = harness.Options();
        options.LoggerFactory = logs;

        await harness.StartAsync(options);

        Assert.Empty(await EdgesAsync(harness));
        Assert.Contains(logs.Entries, e => e.EventId.Id == 1203 && e.Message.Contains(harness.Slot, StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("00000003-0000001B-1", true)]
    [InlineData("00000004-00000002-1", true)]
    [InlineData("", false)]
    [InlineData("00000003", false)]
    [InlineData("0000-00'; DROP TABLE orders; --", false)]
    [InlineData("0000-00\n", false)]
    public void Only_the_servers_snapshot_name_form_reaches_SET_TRANSACTION_SNAPSHOT(string name, bool valid)
        => Assert.Equal(valid, ExportedSnapshotSlot.IsSnapshotName(name));

    private static Task<List<string>> EdgesAsync(PipelineHarness harness)
        => RowsAsync(harness, "SELECT e FROM (SELECT table_name || ' ' || record_id || ' ' || bucket_id AS e FROM sync_bucket_edges) x ORDER BY e COLLATE \"C\"");

    private static Task<List<string>> RowsAsync(PipelineHarness harness, string sql) => Sql.RowsAsync(harness.ConnectionString, sql);

    /// <summary>Fails the rule of one order (after the built-in assigners gave it a bucket: the failure wins).</summary>
    private sealed class FailingOrdersAssigner(string recordId) : IBucketAssigner
    {
        public Task AssignAsync(BucketAssignmentBatch batch, CancellationToken cancellationToken)
        {
            foreach (var change in batch.Changes)
            {
                if (change.Table.Name == "orders" && change.RecordId == recordId)
                    change.Fail($"no bucket for {recordId}");
            }
            return Task.CompletedTask;
        }
    }
}
