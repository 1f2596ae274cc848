using System.Diagnostics;
using Npgsql;
using Synchro.Pipeline.Reading;
using Synchro.Pipeline.Tests.Infrastructure;
using Xunit.Abstractions;

using Synchro.Pipeline.Tests.Reading;

namespace Synchro.Pipeline.Tests.Pipeline;

/// <summary>
/// Issue 20 item 3 under SIGKILL: a pipeline process killed while it writes large cascades (an order with 20,000 lines moved
/// back and forth between alice and bob) and restarted each time writes each line's rows exactly once per move, leaves
/// every line's edges in the final owner's bucket only, and an incremental reader across the kills ends agreeing.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class ParentMoveCascadeKillTests(PostgresServerFixture postgres, ITestOutputHelper output)
{
    private const string Slot = "slot_cascade_kill";
    private const string Publication = "cascade_kill_pub";
    private const int Lines = 20_000;
    private const string Order = "00000000-0000-0000-0000-000000000001";
    private static readonly string[] Buckets = ["user:alice", "user:bob"];

    // The owner after each move; between moves 1 and 2, lines 1..100 are updated; move 1 also updates lines 1..10 itself.
    private static readonly string[] Moves = ["bob", "alice", "bob", "alice", "bob"];

    [Fact]
    public async Task Every_line_moves_exactly_once_per_parent_move_after_repeated_SIGKILL_during_the_cascade()
    {
        var connectionString = await postgres.CreateDatabaseAsync("cascade_kill");
        await Sql.ExecuteAsync(connectionString, $"""
            CREATE TABLE orders (id uuid PRIMARY KEY, user_id text, deleted_at timestamptz);
            CREATE TABLE order_lines (id int PRIMARY KEY, order_id uuid NOT NULL REFERENCES orders (id), quantity int NOT NULL);
            CREATE INDEX ON order_lines (order_id);
            CREATE PUBLICATION {Publication} FOR TABLE orders, order_lines;
            INSERT INTO orders (id, user_id) VALUES ('{Order}', 'alice');
            INSERT INTO order_lines SELECT l, '{Order}', 1 FROM generate_series(1, {Lines}) l;
            """);
        var random = new Random(20261206);
        var started = Stopwatch.StartNew();
        var kills = 0;
        var killsBeforeCommit = 0;
        var killsMidCascade = 0;
        var orderRows = 0L;

        var host = StartHost(connectionString);
        try
        {
            await PipelineHostProcess.WaitForSlotAsync(connectionString, Slot);
            await using var changelog = NpgsqlDataSource.Create(connectionString);
            var reader = new ChangelogReader(changelog);
            var held = new Dictionary<string, HashSet<string>> { ["user:alice"] = [], ["user:bob"] = [] };
            var cursor = await SnapshotAsync(reader, held);
            Assert.Equal(1 + Lines, held["user:alice"].Count);

            for (var move = 0; move < Moves.Length; move++)
            {
                var also = move == 0 ? "UPDATE order_lines SET quantity = quantity + 1 WHERE id <= 10;" : "";
                await Sql.ExecuteAsync(connectionString, $"BEGIN; UPDATE orders SET user_id = '{Moves[move]}'; {also} COMMIT;");
                orderRows += 2;
                // Two kills per move: one as soon as the cascade reads the lines, one a moment after the restarted process streams again.
                for (var kill = 0; kill < 2; kill++)
                {
                    if (kill == 0)
                        await WaitForCascadeAsync(connectionString, orderRows);
                    else
                        await Task.Delay(random.Next(0, 600));
                    var midCascade = await Sql.ScalarAsync<bool>(connectionString, CascadeRunningSql);
                    await host.KillAsync();
                    kills++;
                    if (midCascade)
                        killsMidCascade++;
                    if (await OrderRowsAsync(connectionString) < orderRows)
                        killsBeforeCommit++;
                    host.Dispose();
                    host = StartHost(connectionString);
                    await PipelineHostProcess.WaitForSlotAsync(connectionString, Slot);
                    cursor = await PullAsync(reader, cursor, held);
                }
                // The order's own two rows commit in the changelog transaction of its lines' rows: then the move is written.
                await WaitForAsync(host, connectionString, orderRows);
                cursor = await PullAsync(reader, cursor, held);
                if (move == 0)
                {
                    // Other writes: the lines' own updates, then the order's (one row in bob's bucket) to know they are written.
                    await Sql.ExecuteAsync(connectionString, "UPDATE order_lines SET quantity = quantity + 1 WHERE id <= 100; UPDATE orders SET deleted_at = NULL");
                    await WaitForAsync(host, connectionString, ++orderRows);
                }
            }

            cursor = await PullAsync(reader, cursor, held);
            Assert.Empty(held["user:alice"]);
            Assert.Equal(1 + Lines, held["user:bob"].Count);
        }
        finally
        {
            host.Dispose();
        }

        // Edges: every line in bob's bucket only.
        Assert.Equal((long)Lines, await Sql.ScalarAsync<long>(connectionString,
            "SELECT count(*) FROM sync_bucket_edges WHERE table_name = 'order_lines' AND bucket_id = 'user:bob'"));
        Assert.Equal((long)Lines, await Sql.ScalarAsync<long>(connectionString,
            "SELECT count(*) FROM sync_bucket_edges WHERE table_name = 'order_lines'"));

        // Changelog: per (bucket, line), exactly the in/out sequence one uninterrupted run writes (1 and 2 put, 3 removes).
        var actual = new Dictionary<(string Bucket, int Line), string>();
        var rows = 0;
        await using (var connection = new NpgsqlConnection(connectionString))
        {
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand(
                "SELECT bucket_id, record_id::int, string_agg(CASE WHEN operation = 3 THEN 'out' ELSE 'in' END, ' ' ORDER BY seq) FROM sync_changelog WHERE table_name = 'order_lines' GROUP BY 1, 2",
                connection);
            await using var result = await command.ExecuteReaderAsync();
            while (await result.ReadAsync())
                actual[(result.GetString(0), result.GetInt32(1))] = result.GetString(2);
        }
        for (var line = 1; line <= Lines; line++)
        {
            var bob = line <= 100 ? "in in out in out in" : "in out in out in";
            Assert.Equal((line, bob), (line, actual.GetValueOrDefault(("user:bob", line))));
            Assert.Equal((line, "out in out in out"), (line, actual.GetValueOrDefault(("user:alice", line))));
            rows += bob.Split(' ').Length + 5;
        }
        Assert.Equal(2 * Lines, actual.Count);
        Assert.True(killsMidCascade > 0, $"none of the {kills} kills landed while a cascade read the lines");
        output.WriteLine($"{kills} kills, {killsMidCascade} while a cascade read the lines, {killsBeforeCommit} before the move's changelog transaction committed; {rows} line rows; {started.Elapsed.TotalSeconds:F1} s");
    }

    private static PipelineHostProcess StartHost(string connectionString) =>
        PipelineHostProcess.Start(connectionString, Slot, Publication, "orders", "user_id", maxBatchRows: 1_000,
            childTable: "order_lines", childForeignKey: "order_id", cascadeChunkRows: 500);

    /// <summary>Whether the pipeline's source transaction of a cascade is open (the last statement of an idle session stays in its row, so the state counts).</summary>
    private const string CascadeRunningSql = "SELECT EXISTS (SELECT FROM pg_stat_activity WHERE state <> 'idle' AND query LIKE 'FETCH FORWARD%' AND pid <> pg_backend_pid())";

    /// <summary>Waits until a cascade reads lines, or the move is written (a cascade too quick to see), at most 30 s.</summary>
    private static async Task WaitForCascadeAsync(string connectionString, long orderRows)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!await Sql.ScalarAsync<bool>(connectionString, CascadeRunningSql) && await OrderRowsAsync(connectionString) < orderRows && DateTime.UtcNow < deadline)
            await Task.Delay(5);
    }

    private static Task<long> OrderRowsAsync(string connectionString) =>
        Sql.ScalarAsync<long>(connectionString, "SELECT count(*) FROM sync_changelog WHERE table_name = 'orders'");

    /// <summary>Waits until the order has <paramref name="rows"/> changelog rows (its own rows commit with its lines').</summary>
    private static async Task WaitForAsync(PipelineHostProcess host, string connectionString, long rows)
    {
        var deadline = DateTime.UtcNow.AddMinutes(2);
        while (await OrderRowsAsync(connectionString) < rows)
        {
            if (host.HasExited)
                throw new InvalidOperationException($"The pipeline process exited with code {host.ExitCode}: {string.Join(Environment.NewLine, host.Errors)}");
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"The order has fewer than {rows} changelog rows after 2 minutes: {string.Join(Environment.NewLine, host.Errors)}");
            await Task.Delay(50);
        }
    }

    private static Task<ChangelogCursor> SnapshotAsync(ChangelogReader reader, Dictionary<string, HashSet<string>> held)
        => SyncClient.SnapshotAsync(reader, Buckets, held, 5_000);

    private static Task<ChangelogCursor> PullAsync(ChangelogReader reader, ChangelogCursor cursor, Dictionary<string, HashSet<string>> held)
        => SyncClient.PullAsync(reader, Buckets, cursor, held, 2_000);
}
