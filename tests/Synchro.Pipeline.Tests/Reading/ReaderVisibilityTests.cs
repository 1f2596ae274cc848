using System.Globalization;
using Npgsql;
using Synchro.Pipeline.Maintenance;
using Synchro.Pipeline.Reading;
using Synchro.Pipeline.Tests.Infrastructure;
using Synchro.Pipeline.Tests.Pipeline;
using Xunit.Abstractions;

namespace Synchro.Pipeline.Tests.Reading;

/// <summary>
/// The visibility rule of the changelog (docs/changelog.md): a reader that has read up to a position never later sees a
/// row below it, whoever writes: the pipeline's writer under load, <c>replay-failures</c> beside it, a pipeline start
/// that loads its initial snapshot, and compaction removing rows all along.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class ReaderVisibilityTests(PostgresServerFixture postgres, ITestOutputHelper output)
{
    private const int Owners = 20;
    private const int ExistingOrders = 2_000;

    // Orders inserted, updated, moved between owners and deleted, by id from a range that overlaps the existing ones.
    private const string Script = """
        \set id random(1, 4000)
        \set uid random(1, 20)
        \set op random(1, 100)
        \if :op <= 40
        INSERT INTO orders (id, user_id) VALUES (lpad(to_hex(:id), 32, '0')::uuid, 'u' || :uid) ON CONFLICT (id) DO NOTHING;
        \elif :op <= 75
        UPDATE orders SET total = total + 1 WHERE id = lpad(to_hex(:id), 32, '0')::uuid;
        \elif :op <= 90
        UPDATE orders SET user_id = 'u' || :uid WHERE id = lpad(to_hex(:id), 32, '0')::uuid;
        \else
        DELETE FROM orders WHERE id = lpad(to_hex(:id), 32, '0')::uuid;
        \endif
        """;

    [Fact]
    public async Task A_polling_reader_never_sees_a_lower_seq_commit_after_a_higher_one_and_ends_with_every_row()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "reader_visibility");
        await harness.ExecuteAsync($"INSERT INTO orders (id, user_id) SELECT lpad(to_hex(n), 32, '0')::uuid, 'u' || (1 + n % {Owners}) FROM generate_series(1, {ExistingOrders}) AS n");
        // The reader starts before the pipeline has created its tables: migrate them first, as a deployment would.
        await using (var connection = new NpgsqlConnection(harness.ConnectionString))
        {
            await connection.OpenAsync();
            await Synchro.Pipeline.Changelog.ChangelogSchema.EnsureAsync(connection);
        }
        await using var dataSource = NpgsqlDataSource.Create(harness.ConnectionString);
        var reader = new ChangelogReader(dataSource);
        var buckets = Enumerable.Range(1, Owners).Select(i => "user:u" + i.ToString(CultureInfo.InvariantCulture)).ToArray();
        var poller = new Poller(reader, buckets);
        using var stop = new CancellationTokenSource();
        var polling = Task.Run(() => poller.RunAsync(stop.Token));

        var script = Path.Combine(Path.GetTempPath(), $"reader-visibility-{Guid.NewGuid():N}.sql");
        await File.WriteAllTextAsync(script, Script);
        try
        {
            using var pgbench = Pgbench.Start(postgres.Server, harness.ConnectionString, script, "-c", "3", "-j", "2", "-T", "15");
            var pgbenchOutput = pgbench.StandardOutput.ReadToEndAsync();
            var pgbenchErrors = pgbench.StandardError.ReadToEndAsync();

            // The pipeline starts under load and loads the existing orders' edges (its initial snapshot) while the reader polls.
            var options = harness.Options(maxBatchRows: 200);
            await harness.StartAsync(options);
            Assert.True(harness.Pipeline!.GetStatus().SnapshotRows >= ExistingOrders / 2, $"the initial snapshot read {harness.Pipeline.GetStatus().SnapshotRows} rows");

            // Compaction beside them, pass after pass, removing superseded rows (the retention keeps every delete).
            var compactor = new Synchro.Pipeline.Compaction.ChangelogCompactor(dataSource, new Synchro.Pipeline.Compaction.ChangelogCompactionOptions { ChunkRows = 50 });
            var compacted = 0L;
            var compacting = Task.Run(async () =>
            {
                while (!stop.IsCancellationRequested)
                {
                    var pass = await compactor.CompactAsync();
                    compacted += pass.SupersededRowsRemoved + pass.DeletesRemoved;
                }
            });

            // replay-failures beside the writer, round after round, while pgbench writes.
            var replayed = 0;
            var rounds = 0;
            while (!pgbench.HasExited)
            {
                await harness.ExecuteAsync("""
                    INSERT INTO sync_rule_failures (table_name, record_id, operation, error_text, payload)
                    SELECT 'orders', id::text, 2, 'an earlier failure', jsonb_build_object('id', id, 'user_id', user_id)
                    FROM orders ORDER BY random() LIMIT 300
                    """);
                var result = await new RuleFailureReplayer(options).ReplayAsync();
                replayed += result.Replayed;
                rounds++;
            }
            await pgbench.WaitForExitAsync();
            Assert.True(pgbench.ExitCode == 0, $"pgbench failed (exit {pgbench.ExitCode}): {await pgbenchErrors}");
            output.WriteLine((await pgbenchOutput).Split('\n').FirstOrDefault(l => l.StartsWith("number of transactions actually processed", StringComparison.Ordinal)));
            Assert.True(replayed > 0, "replay-failures replayed nothing");

            await harness.WaitUntilCaughtUpAsync();
            await stop.CancelAsync();
            await polling;
            await compacting;

            var all = new List<long>();
            await using (var command = dataSource.CreateCommand("SELECT seq FROM sync_changelog WHERE bucket_id = ANY($1) ORDER BY seq"))
            {
                command.Parameters.Add(new NpgsqlParameter { Value = buckets });
                await using var rows = await command.ExecuteReaderAsync();
                while (await rows.ReadAsync())
                    all.Add(rows.GetInt64(0));
            }
            output.WriteLine($"{poller.Reads:N0} reads saw {poller.Seen.Count:N0} rows; {rounds} replay rounds replayed {replayed:N0} failures; "
                + $"compaction removed {compacted:N0} rows; the changelog holds {all.Count:N0} rows of the buckets");
            Assert.Empty(poller.Violations);
            Assert.True(all.Count > 2_000, $"the workload wrote only {all.Count} changelog rows");
            Assert.True(compacted > 0, "compaction removed nothing");
            // Compaction removed rows, some before the reader got to them: every row left after the snapshot the client
            // resynced from (the initial snapshot's) was seen, in order.
            Assert.True(poller.ResyncedAt > 0, "the client was never told to resync after the initial snapshot");
            Assert.Empty(all.Where(seq => seq > poller.ResyncedAt).Except(poller.Seen));
            Assert.True(poller.Reads > 20, $"only {poller.Reads} reads");
        }
        finally
        {
            await stop.CancelAsync();
            File.Delete(script);
        }
    }

    /// <summary>Reads the buckets in a loop, each read from the previous one's cursor, recording every row and every row that came out of order.</summary>
    private sealed class Poller(ChangelogReader reader, string[] buckets)
    {
        public List<long> Seen { get; } = [];

        public List<string> Violations { get; } = [];

        public int Reads { get; private set; }

        /// <summary>The position of the snapshot the client resynced from, 0 before.</summary>
        public long ResyncedAt { get; private set; }

        private async Task<ChangelogCursor> SnapshotAsync()
        {
            BucketSnapshotToken? after = null;
            while (true)
            {
                var page = await reader.ReadSnapshotAsync(buckets, after, 1_000);
                if (page.IsLast)
                    return page.Cursor!;
                after = page.Next;
            }
        }

        public async Task RunAsync(CancellationToken stop)
        {
            var cursor = ChangelogCursor.Start;
            var highest = 0L;
            while (true)
            {
                // A read that starts after the stop began after everything was committed: once it says there is no
                // more, the reader has seen the whole changelog.
                var last = stop.IsCancellationRequested;
                using var page = await reader.ReadAsync(buckets, cursor, 100);
                Reads++;
                if (page.Status != ChangelogReadStatus.Ok)
                {
                    // The one resync expected: the pipeline's initial snapshot, whose edges come without changelog rows,
                    // raised every bucket's horizon past the cursor this client started with.
                    if (ResyncedAt > 0 || page.ResyncReason != ResyncReason.HorizonPassed)
                    {
                        Violations.Add($"read {Reads} asked for a resync ({page.ResyncReason}) after one at {ResyncedAt}");
                        return;
                    }
                    cursor = await SnapshotAsync();
                    ResyncedAt = cursor.Position;
                    highest = Math.Max(highest, ResyncedAt);
                    continue;
                }
                foreach (var entry in page)
                {
                    if (entry.Seq <= cursor.PositionOf(entry.BucketId))
                        Violations.Add($"read {Reads}: row {entry.Seq} is not after the cursor {cursor}");
                    if (entry.Seq <= highest)
                        Violations.Add($"read {Reads}: row {entry.Seq} came after row {highest}");
                    highest = Math.Max(highest, entry.Seq);
                    Seen.Add(entry.Seq);
                }
                if (page.Next.Position < cursor.Position)
                    Violations.Add($"read {Reads}: the cursor moved back from {cursor} to {page.Next}");
                cursor = page.Next;
                if (last && !page.HasMore)
                    return;
                if (!page.HasMore)
                {
                    // The poll interval of an idle client, not a wait for anything.
                    await Task.Delay(2, CancellationToken.None);
                }
            }
        }
    }
}
