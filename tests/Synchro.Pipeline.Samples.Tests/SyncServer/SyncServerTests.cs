using System.Diagnostics;
using System.Net;
using System.Text.Json;
using Npgsql;
using Synchro.Pipeline.Changelog;
using Synchro.Pipeline.Reading;
using Synchro.Pipeline.Samples.Tests.Infrastructure;
using Synchro.Pipeline.Tests.Infrastructure;
using Synchro.Pipeline.Tests.Pipeline;
using Xunit.Abstractions;

namespace Synchro.Pipeline.Samples.Tests.SyncServer;

/// <summary>The sample sync server on a loopback port, with its hosted pipeline consuming a pgbench workload, pulled by real HTTP clients.</summary>
[Collection(SamplesPostgresCollection.Name)]
public sealed class SyncServerTests(SamplesPostgresFixture postgres, ITestOutputHelper output)
{
    private const string Publication = "sync_pub";

    // Rows that exist before the slot: the initial snapshot writes them as edges only, so a client gets them from a snapshot.
    private const string Schema = """
        CREATE TABLE items (id int PRIMARY KEY, owner text, n int NOT NULL DEFAULT 0, deleted_at timestamptz);
        CREATE PUBLICATION sync_pub FOR TABLE items;
        INSERT INTO items (id, owner) SELECT g, CASE WHEN g % 6 = 0 THEN NULL ELSE 'u' || g % 6 END FROM generate_series(1, 600) g;
        """;

    // Records enter, move between users' buckets and global (owner NULL), change, are soft-deleted and deleted.
    private const string Workload = """
        \set id random(1, 3000)
        \set owner random(0, 5)
        \set kind random(1, 10)
        \if :kind <= 5
        INSERT INTO items (id, owner) VALUES (:id, CASE WHEN :owner = 0 THEN NULL ELSE 'u' || :owner END)
            ON CONFLICT (id) DO UPDATE SET owner = EXCLUDED.owner, deleted_at = NULL, n = items.n + 1;
        \elif :kind <= 7
        UPDATE items SET n = n + 1 WHERE id = :id;
        \elif :kind <= 9
        UPDATE items SET deleted_at = now() WHERE id = :id;
        \else
        DELETE FROM items WHERE id = :id;
        \endif
        """;

    private static readonly TimeSpan s_timeout = TimeSpan.FromMinutes(2);

    // What an idle client waits between pulls that found nothing more.
    private static readonly TimeSpan s_pollInterval = TimeSpan.FromMilliseconds(20);

    [Fact]
    public async Task Clients_pulling_over_http_while_pgbench_writes_end_with_the_buckets_members_and_resync_past_a_horizon()
    {
        var database = await postgres.CreateDatabaseAsync("sync_server");
        await Sql.ExecuteAsync(database, Schema);
        await using var server = await SyncServerHost.StartAsync(Settings(database, "slot_sync_server"), output);
        await WaitUntilRunningAsync(server.Pipeline!);
        using var http = new HttpClient { BaseAddress = server.Address, Timeout = TimeSpan.FromSeconds(30) };
        using var deadline = new CancellationTokenSource(s_timeout);

        // Three users' clients, JSON and NDJSON, small and large pages; each reads its own bucket and global.
        var clients = new[]
        {
            new SyncClient(http, "u1", ["user:u1", "global"], ndjson: false, limit: 50),
            new SyncClient(http, "u2", ["user:u2", "global"], ndjson: true, limit: 200),
            new SyncClient(http, "u3", ["user:u3", "global"], ndjson: true, limit: 1_000),
        };
        // A second client of u1 that loads, pulls for a while, then goes offline with its cursor.
        var laggard = new SyncClient(http, "u1", ["user:u1", "global"], ndjson: false, limit: 100);

        var script = Path.Combine(Path.GetTempPath(), $"sync-server-{Guid.NewGuid():N}.sql");
        await File.WriteAllTextAsync(script, Workload);
        try
        {
            using var pgbench = Pgbench.Start(postgres.Server, database, script, "-c", "2", "-j", "2", "-R", "300", "-T", "8");
            var stderr = pgbench.StandardError.ReadToEndAsync(deadline.Token);
            var stdout = pgbench.StandardOutput.ReadToEndAsync(deadline.Token);

            // Clients start while pgbench writes, so their snapshot pages interleave with commits.
            var running = clients.Select((client, i) => RunClientAsync(client, TimeSpan.FromMilliseconds(700 * (i + 1)), deadline.Token)).ToList();
            var laggardRun = RunLaggardAsync(laggard, deadline.Token);

            await pgbench.WaitForExitAsync(deadline.Token);
            Assert.True(pgbench.ExitCode == 0, $"pgbench exited with {pgbench.ExitCode}: {await stderr}");
            output.WriteLine((await stdout).Trim());
            await laggardRun;

            // One transaction after the workload: a client that holds its user's marker has read every earlier commit.
            await Sql.ExecuteAsync(database, "INSERT INTO items (id, owner) VALUES (1000001, 'u1'), (1000002, 'u2'), (1000003, 'u3')");
            await Task.WhenAll(running);
        }
        finally
        {
            File.Delete(script);
        }

        foreach (var client in clients)
        {
            await AssertHoldsTheEdgesAsync(database, client);
            output.WriteLine($"{client.Buckets[0]}: {client.SnapshotPages} snapshot pages, {client.Pulls} pulls, {client.RowsApplied} rows, "
                + $"{client.Members.Sum(m => m.Value.Count)} members");
        }
        Assert.True(clients[0].SnapshotPages > 1, "the small-page client's snapshot took one page");
        Assert.True(await Sql.ScalarAsync<long>(database, "SELECT count(*) FROM sync_changelog WHERE operation = 3") > 0, "the workload removed nothing");
        Assert.True(clients[0].Members["global"].Count > 0, "no record in global");

        // Compaction as the design fixes it, for user:u1 after the laggard's cursor: the delete rows that are the latest of
        // their record go, and the bucket's horizon rises to the highest of them in the same transaction.
        var laggardPosition = ChangelogCursor.Parse(laggard.Cursor!).Position;
        var removed = await Sql.ScalarAsync<long>(database, $"""
            WITH latest AS (
                SELECT DISTINCT ON (table_name, record_id) seq, operation FROM sync_changelog
                WHERE bucket_id = 'user:u1' ORDER BY table_name, record_id, seq DESC),
            removed AS (
                DELETE FROM sync_changelog c USING latest l
                WHERE c.seq = l.seq AND l.operation = 3 AND c.bucket_id = 'user:u1' AND c.seq > {laggardPosition}
                RETURNING c.seq),
            horizon AS (
                INSERT INTO sync_bucket_horizons (bucket_id, horizon_seq) SELECT 'user:u1', max(seq) FROM removed HAVING count(*) > 0
                ON CONFLICT (bucket_id) DO UPDATE SET horizon_seq = GREATEST(sync_bucket_horizons.horizon_seq, EXCLUDED.horizon_seq))
            SELECT count(*) FROM removed
            """);
        Assert.True(removed > 0, $"no delete row of user:u1 after seq {laggardPosition} to compact");

        // The laggard is told to resync user:u1 (not global), loads it again with its cursor merged in, and catches up.
        var resync = await laggard.PullAsync();
        Assert.Equal(new[] { "user:u1" }, resync.Resync);
        Assert.Equal("horizonPassed", resync.Reason);
        await laggard.SnapshotAsync(["user:u1"]);
        Assert.Contains('.', laggard.Cursor!);
        while ((await laggard.PullAsync()) is { HasMore: true } pull)
            Assert.Null(pull.Resync);
        await AssertHoldsTheEdgesAsync(database, laggard);
        output.WriteLine($"laggard: {removed} delete rows compacted after seq {laggardPosition}, {laggard.Pulls} pulls");

        // A cursor from another (or a restored) changelog: every bucket resyncs.
        var ahead = new SyncClient(http, "u2", ["user:u2", "global"], ndjson: true, limit: 10);
        await ahead.SnapshotAsync();
        var cursor = ChangelogCursor.Parse(ahead.Cursor!);
        using var response = await ahead.SendAsync($"sync/changes?bucket=user:u2&bucket=global&cursor={cursor.Position + 1_000_000}");
        Assert.Equal(HttpStatusCode.Conflict, response.StatusCode);
        using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.Equal("cursorAhead", body.RootElement.GetProperty("reason").GetString());
        Assert.Equal(new[] { "global", "user:u2" }, body.RootElement.GetProperty("resync").EnumerateArray().Select(b => b.GetString()).Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task Beside_a_pipeline_the_server_reads_and_refuses_bad_requests_with_what_to_do()
    {
        var database = await postgres.CreateDatabaseAsync("sync_server_beside");
        await using (var connection = new NpgsqlConnection(database))
        {
            await connection.OpenAsync();
            await ChangelogSchema.EnsureAsync(connection);
        }
        await Sql.ExecuteAsync(database, """
            INSERT INTO sync_bucket_edges (table_name, record_id, bucket_id) VALUES ('items', '1', 'user:u1'), ('items', '2', 'user:u1'), ('items', '3', 'user:u2');
            INSERT INTO sync_changelog (bucket_id, table_name, record_id, operation) VALUES ('user:u1', 'items', '1', 1);
            """);
        await using var server = await SyncServerHost.StartAsync(new Dictionary<string, string?>
        {
            ["SyncServer:HostPipeline"] = "false",
            ["ConnectionStrings:Changelog"] = database,
        }, output);
        Assert.Null(server.Pipeline);
        using var http = new HttpClient { BaseAddress = server.Address };
        var client = new SyncClient(http, "u1", ["user:u1", "global"], ndjson: false, limit: 1);

        await client.SnapshotAsync();
        Assert.Equal(new[] { "items/1", "items/2" }, client.Members["user:u1"].Order(StringComparer.Ordinal));
        Assert.True(client.SnapshotPages >= 2, "one member per page, two members");
        Assert.Equal(new PullResult(0, false, null, null), await client.PullAsync());

        await AssertRefusedAsync(http, "u1", "sync/changes?bucket=user:u1", HttpStatusCode.BadRequest, "GET /sync/snapshot");
        await AssertRefusedAsync(http, "u1", "sync/changes?cursor=0", HttpStatusCode.BadRequest, "bucket=a&bucket=b");
        await AssertRefusedAsync(http, "u1", "sync/changes?bucket=user:u1&cursor=12x", HttpStatusCode.BadRequest, "cursor: ");
        await AssertRefusedAsync(http, "u1", "sync/snapshot?bucket=user:u1&after=xyz", HttpStatusCode.BadRequest, "after: ");
        await AssertRefusedAsync(http, "u1", "sync/snapshot?bucket=user:u1&limit=0", HttpStatusCode.BadRequest, "limit must be");
        await AssertRefusedAsync(http, "u1", "sync/snapshot?bucket=user:u1&limit=10001", HttpStatusCode.BadRequest, "from 1 to 10000");
        await AssertRefusedAsync(http, null, "sync/snapshot?bucket=user:u1", HttpStatusCode.Unauthorized, "X-Sync-User");
        await AssertRefusedAsync(http, "u1", "sync/snapshot?bucket=user:u1&bucket=user:u2", HttpStatusCode.Forbidden, "'user:u2'");
    }

    private static async Task AssertRefusedAsync(HttpClient http, string? user, string pathAndQuery, HttpStatusCode status, string hint)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, pathAndQuery);
        if (user is not null)
            request.Headers.Add("X-Sync-User", user);
        using var response = await http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(status == response.StatusCode, $"{pathAndQuery}: {(int)response.StatusCode} {text}");
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        using var body = JsonDocument.Parse(text);
        Assert.Contains(hint, body.RootElement.GetProperty("error").GetString(), StringComparison.Ordinal);
    }

    /// <summary>Snapshot, then pull until the client holds its user's marker (written after the workload) and no more rows wait.</summary>
    private static async Task RunClientAsync(SyncClient client, TimeSpan start, CancellationToken ct)
    {
        await Task.Delay(start, ct);
        await client.SnapshotAsync();
        var marker = "items/100000" + client.Buckets[0][^1];
        while (true)
        {
            var pull = await client.PullAsync();
            Assert.Null(pull.Resync);
            if (pull.HasMore)
                continue;
            if (client.Holds(client.Buckets[0], marker))
                return;
            await Task.Delay(s_pollInterval, ct);
        }
    }

    /// <summary>Loads after a second of load, pulls for another second, then stops with its cursor.</summary>
    private static async Task RunLaggardAsync(SyncClient client, CancellationToken ct)
    {
        await Task.Delay(TimeSpan.FromSeconds(1), ct);
        await client.SnapshotAsync();
        var offline = Stopwatch.StartNew();
        while (offline.Elapsed < TimeSpan.FromSeconds(1))
        {
            if (!(await client.PullAsync()).HasMore)
                await Task.Delay(s_pollInterval, ct);
        }
    }

    private static async Task AssertHoldsTheEdgesAsync(string database, SyncClient client)
    {
        foreach (var bucket in client.Buckets)
        {
            var edges = await Sql.RowsAsync(database, $"SELECT table_name || '/' || record_id FROM sync_bucket_edges WHERE bucket_id = '{bucket}' ORDER BY 1");
            var held = client.Members[bucket].Order(StringComparer.Ordinal).ToList();
            Assert.True(edges.SequenceEqual(held), $"{bucket}: the client holds {held.Count} records, the edges {edges.Count}; "
                + $"missing {string.Join(", ", edges.Except(held).Take(10))}; extra {string.Join(", ", held.Except(edges).Take(10))}");
        }
    }

    private static async Task WaitUntilRunningAsync(WalPipeline pipeline)
    {
        var clock = Stopwatch.StartNew();
        while (pipeline.GetStatus() is { State: not WalPipelineState.Running } status)
        {
            if (status.State is WalPipelineState.Failed or WalPipelineState.Stopped)
                throw new InvalidOperationException($"The hosted pipeline is {status.State}: {status.Failure}");
            if (clock.Elapsed > TimeSpan.FromSeconds(30))
                throw new TimeoutException($"The hosted pipeline is still {status.State} after 30 s.");
            await Task.Delay(20);
        }
    }

    private static Dictionary<string, string?> Settings(string database, string slot) => new()
    {
        ["Synchro:ConnectionString"] = database,
        ["Synchro:SlotName"] = slot,
        ["Synchro:PublicationName"] = Publication,
        ["Synchro:BatchLinger"] = "5ms",
        ["Synchro:MaxBatchRows"] = "200",
        ["Synchro:StatusInterval"] = "1s",
        ["Synchro:Tables:items:OwnerColumn"] = "owner",
        ["Synchro:Tables:items:GlobalWhenBucketNull"] = "true",
    };
}
