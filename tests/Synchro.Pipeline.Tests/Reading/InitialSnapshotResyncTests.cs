using Npgsql;
using Synchro.Pipeline.Changelog;
using Synchro.Pipeline.Reading;
using Synchro.Pipeline.Tests.Infrastructure;
using Synchro.Pipeline.Tests.Pipeline;

namespace Synchro.Pipeline.Tests.Reading;

/// <summary>
/// The pipeline's initial snapshot writes edges without changelog rows (invariant 11): a client that synced before the load
/// is told to resync, and its second snapshot holds the loaded members.
/// </summary>
[Collection(PostgresCollection.Name)]
[Trait(TestCategories.Name, TestCategories.VersionSensitive)]
public sealed class InitialSnapshotResyncTests(PostgresServerFixture postgres)
{
    private static readonly string[] s_buckets = ["user:u1", "user:u2"];

    [Fact]
    public async Task A_client_that_synced_before_the_initial_snapshot_is_told_to_resync_and_then_sees_the_loaded_members()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "reader_initial_snapshot");
        await harness.ExecuteAsync("INSERT INTO orders (id, user_id) SELECT lpad(to_hex(n), 32, '0')::uuid, 'u' || (1 + n % 2) FROM generate_series(1, 10) AS n");
        await using (var connection = new NpgsqlConnection(harness.ChangelogConnectionString))
        {
            await connection.OpenAsync();
            await ChangelogSchema.EnsureAsync(connection);
        }
        await using var dataSource = NpgsqlDataSource.Create(harness.ChangelogConnectionString);
        var reader = new ChangelogReader(dataSource);

        // Before the pipeline ever ran: the buckets are empty, and a read after the snapshot has nothing to say.
        var (before, early) = await SnapshotAsync(reader);
        Assert.Empty(before);
        using (var quiet = await reader.ReadAsync(s_buckets, early, 100))
            Assert.Equal(ChangelogReadStatus.Ok, quiet.Status);

        await harness.StartAsync();
        await harness.ExecuteAsync("INSERT INTO orders (id, user_id) VALUES ('00000000-0000-0000-0000-0000000000ff', 'u1')");
        await harness.WaitForChangelogAsync(1);

        // The load's edges came without changelog rows: the early client must not go on as if it had them.
        using (var stale = await reader.ReadAsync(s_buckets, early, 100))
        {
            Assert.Equal(ChangelogReadStatus.ResyncRequired, stale.Status);
            Assert.Equal(ResyncReason.HorizonPassed, stale.ResyncReason);
            Assert.Equal(s_buckets, stale.ResyncBuckets);
        }

        var (members, cursor) = await SnapshotAsync(reader);
        var edges = await Sql.RowsAsync(harness.ChangelogConnectionString, "SELECT bucket_id || '/' || record_id FROM sync_bucket_edges ORDER BY 1");
        Assert.Equal(11, members.Count);
        Assert.Equal(edges, members);
        using var fresh = await reader.ReadAsync(s_buckets, cursor, 100);
        Assert.Equal(ChangelogReadStatus.Ok, fresh.Status);
        Assert.Equal(0, fresh.Count);
    }

    private static async Task<(List<string> Members, ChangelogCursor Cursor)> SnapshotAsync(ChangelogReader reader)
    {
        var members = new List<string>();
        BucketSnapshotToken? after = null;
        while (true)
        {
            var page = await reader.ReadSnapshotAsync(s_buckets, after, 4);
            members.AddRange(page.Members.Select(m => m.BucketId + "/" + m.RecordId));
            if (page.IsLast)
            {
                members.Sort(StringComparer.Ordinal);
                return (members, page.Cursor!);
            }
            after = page.Next;
        }
    }
}
