using Npgsql;
using Synchro.Pipeline.Reading;
using Synchro.Pipeline.Registry;
using Synchro.Pipeline.Tests.Infrastructure;

using Synchro.Pipeline.Tests.Reading;

namespace Synchro.Pipeline.Tests.Pipeline;

/// <summary>
/// Issue 20 item 3: a client reading alice's and bob's buckets incrementally (<see cref="ChangelogReader"/>) while an order with
/// thousands of descendants moves from alice to bob in many chunks ends holding every descendant in bob's bucket and none in alice's.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class ParentMoveCascadeReaderTests(PostgresServerFixture postgres)
{
    private static readonly string[] Buckets = ["user:alice", "user:bob"];

    [Fact]
    public async Task An_incremental_reader_ends_with_every_descendant_in_the_new_owners_bucket_and_none_in_the_old()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "cascade_reader");
        await harness.ExecuteAsync("""
            CREATE TABLE line_notes (id int PRIMARY KEY, line_id int NOT NULL REFERENCES order_lines (id), body text);
            CREATE INDEX ON line_notes (line_id);
            CREATE INDEX ON order_lines (order_id);
            ALTER PUBLICATION synchro_pub ADD TABLE line_notes;
            INSERT INTO orders (id, user_id) VALUES ('00000000-0000-0000-0000-000000000001', 'alice');
            INSERT INTO order_lines SELECT l, '00000000-0000-0000-0000-000000000001', 1 FROM generate_series(1, 100) l;
            INSERT INTO line_notes SELECT l * 1000 + n, l, 'note' FROM generate_series(1, 100) l, generate_series(1, 49) n;
            """);
        var options = harness.Options();
        options.Tables = PipelineHarness.Registry()
            .Add(new TableRegistration("line_notes") { ParentTable = "order_lines", ParentForeignKeyColumn = "line_id", SoftDeleteColumn = null });
        options.CascadeChunkRows = 300;
        await harness.StartAsync(options);

        await using var changelog = NpgsqlDataSource.Create(harness.ChangelogConnectionString);
        var reader = new ChangelogReader(changelog);
        var held = new Dictionary<string, HashSet<string>> { ["user:alice"] = [], ["user:bob"] = [] };
        var cursor = await SnapshotAsync(reader, held);
        Assert.Equal(1 + 100 + 4_900, held["user:alice"].Count);

        // The client pulls small pages all along; the move lands between two of its reads, atomically.
        var moving = harness.ExecuteAsync("UPDATE orders SET user_id = 'bob'");
        var reads = 0;
        while (!moving.IsCompleted || reads < 3)
        {
            cursor = await PullAsync(reader, cursor, held);
            reads++;
        }
        await moving;
        await harness.WaitUntilCaughtUpAsync();
        cursor = await PullAsync(reader, cursor, held);

        Assert.Empty(held["user:alice"]);
        Assert.Equal(1 + 100 + 4_900, held["user:bob"].Count);
        Assert.Contains("line_notes 100049", held["user:bob"]);
    }

    private static Task<ChangelogCursor> SnapshotAsync(ChangelogReader reader, Dictionary<string, HashSet<string>> held)
        => SyncClient.SnapshotAsync(reader, Buckets, held, 1_000);

    private static Task<ChangelogCursor> PullAsync(ChangelogReader reader, ChangelogCursor cursor, Dictionary<string, HashSet<string>> held)
        => SyncClient.PullAsync(reader, Buckets, cursor, held, 500);
}
