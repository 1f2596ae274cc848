using Microsoft.Extensions.Logging;
using Npgsql;
using Synchro.Pipeline.Registry;
using Synchro.Pipeline.Tests.Infrastructure;

namespace Synchro.Pipeline.Tests.Pipeline;

/// <summary>
/// Issue 20: when a parent moves to other buckets, the descendants that inherit their buckets through the parent chain move
/// with it, in the same changelog transaction (<see cref="WalPipelineOptions.CascadeParentMoves"/>), on a live pipeline.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class ParentMoveCascadeTests(PostgresServerFixture postgres)
{
    private const string OrderId = "00000000-0000-0000-0000-000000000002";

    // A third level under order_lines.
    private const string Notes = """
        CREATE TABLE line_notes (id int PRIMARY KEY, line_id int NOT NULL REFERENCES order_lines (id), body text);
        CREATE INDEX ON line_notes (line_id);
        CREATE INDEX ON order_lines (order_id);
        ALTER PUBLICATION synchro_pub ADD TABLE line_notes;
        """;

    private static TableRegistry ThreeLevels() => PipelineHarness.Registry()
        .Add(new TableRegistration("line_notes") { ParentTable = "order_lines", ParentForeignKeyColumn = "line_id", SoftDeleteColumn = null });

    [Fact]
    public async Task The_issues_example_lines_follow_their_order_from_alice_to_bob()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "cascade_issue");
        using var logs = new RecordingLoggerFactory(LogLevel.Debug);
        var options = harness.Options();
        options.LoggerFactory = logs;
        await harness.StartAsync(options);
        await harness.ExecuteAsync($"""
            INSERT INTO orders (id, user_id) VALUES ('{OrderId}', 'alice');
            INSERT INTO order_lines VALUES (20, '{OrderId}', 1), (21, '{OrderId}', 1);
            """);
        Assert.Equal(3, (await harness.WaitForChangelogAsync(3)).Count);
        // The normal path: a new order and its lines move nothing, so no cascade runs (and no query of it).
        Assert.DoesNotContain(logs.Entries, e => e.EventId.Id == 3020);

        await harness.ExecuteAsync($"UPDATE orders SET user_id = 'bob' WHERE id = '{OrderId}'");
        var rows = await harness.WaitForChangelogAsync(9);

        // The order's own rows first, then its lines' moves, all in one commit.
        Assert.Equal([$"user:bob orders {OrderId} 1", $"user:alice orders {OrderId} 3"], rows[3..5]);
        Assert.Equal(
            ["user:alice order_lines 20 3", "user:alice order_lines 21 3", "user:bob order_lines 20 1", "user:bob order_lines 21 1"],
            rows[5..].Order(StringComparer.Ordinal));
        Assert.Equal(
            ["order_lines 20 user:bob", "order_lines 21 user:bob", $"orders {OrderId} user:bob"],
            await EdgesAsync(harness));
        var cascade = Assert.Single(logs.Entries, e => e.EventId.Id == 3020);
        Assert.StartsWith("1 moved record(s) with children: 2 descendant(s) read in 2 fetch(es), 4 changelog row(s)", cascade.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Three_levels_move_and_a_descendant_changed_in_the_same_transaction_moves_once()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "cascade_levels");
        await harness.ExecuteAsync(Notes);
        var options = harness.Options();
        options.Tables = ThreeLevels();
        await harness.StartAsync(options);
        await harness.ExecuteAsync($"""
            INSERT INTO orders (id, user_id) VALUES ('{OrderId}', 'alice');
            INSERT INTO order_lines VALUES (20, '{OrderId}', 1), (21, '{OrderId}', 1);
            INSERT INTO line_notes VALUES (200, 20, 'a'), (201, 20, 'b'), (210, 21, 'c');
            """);
        await harness.WaitForChangelogAsync(6);

        // Line 21 and note 201 change in the same transaction as the move, one before it and one after.
        await harness.ExecuteAsync($"""
            BEGIN;
            UPDATE order_lines SET quantity = 2 WHERE id = 21;
            UPDATE orders SET user_id = 'bob' WHERE id = '{OrderId}';
            UPDATE line_notes SET body = 'bb' WHERE id = 201;
            COMMIT;
            """);
        await harness.WaitForChangelogAsync(6 + 12);
        var rows = (await harness.ChangelogAsync())[6..];

        foreach (var (table, id) in new[] { ("order_lines", "20"), ("order_lines", "21"), ("line_notes", "200"), ("line_notes", "201"), ("line_notes", "210") })
        {
            // Exactly one way into bob and one out of alice for each descendant, whichever wrote it.
            Assert.Single(rows, r => r.StartsWith($"user:bob {table} {id} ", StringComparison.Ordinal));
            Assert.Single(rows, r => r == $"user:alice {table} {id} 3");
        }
        Assert.All(await EdgesAsync(harness), e => Assert.EndsWith(" user:bob", e, StringComparison.Ordinal));
        Assert.Equal(6, (await EdgesAsync(harness)).Count);
    }

    [Fact]
    public async Task Deleted_and_soft_deleted_parents_give_their_children_what_the_parent_chain_rule_gives()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "cascade_deletes");
        await harness.ExecuteAsync(Notes + """
            ALTER TABLE order_lines ADD COLUMN deleted_at timestamptz;
            ALTER TABLE line_notes DROP CONSTRAINT line_notes_line_id_fkey;
            """);
        var options = harness.Options();
        options.Tables = new TableRegistry()
            .Add(new TableRegistration("orders") { OwnerColumn = "user_id" })
            .Add(new TableRegistration("order_lines") { ParentTable = "orders", ParentForeignKeyColumn = "order_id" })
            .Add(new TableRegistration("line_notes") { ParentTable = "order_lines", ParentForeignKeyColumn = "line_id", SoftDeleteColumn = null });
        await harness.StartAsync(options);
        await harness.ExecuteAsync($"""
            INSERT INTO orders (id, user_id) VALUES ('{OrderId}', 'alice');
            INSERT INTO order_lines VALUES (20, '{OrderId}', 1), (21, '{OrderId}', 1);
            INSERT INTO line_notes VALUES (200, 20, 'a'), (210, 21, 'b');
            """);
        await harness.WaitForChangelogAsync(5);

        // The rule reads a soft-deleted parent's row as it is, so its children keep their buckets: only the order leaves.
        await harness.ExecuteAsync($"UPDATE orders SET deleted_at = now() WHERE id = '{OrderId}'");
        var rows = await harness.WaitForChangelogAsync(6);
        Assert.Equal([$"user:alice orders {OrderId} 3"], rows[5..]);
        await harness.ExecuteAsync($"UPDATE orders SET deleted_at = NULL WHERE id = '{OrderId}'");
        rows = await harness.WaitForChangelogAsync(7);
        Assert.Equal([$"user:alice orders {OrderId} 1"], rows[6..]);
        Assert.Equal(5, (await EdgesAsync(harness)).Count);

        // A soft-deleted line stays in no bucket when its order moves, and its note, which inherits through the line's row, moves.
        await harness.ExecuteAsync($"""
            UPDATE order_lines SET deleted_at = now() WHERE id = 21;
            UPDATE orders SET user_id = 'bob' WHERE id = '{OrderId}';
            """);
        rows = await harness.WaitForChangelogAsync(7 + 1 + 2 + 6);
        Assert.Equal("user:alice order_lines 21 3", rows[7]);
        Assert.Equal(
            ["user:alice line_notes 200 3", "user:alice line_notes 210 3", "user:alice order_lines 20 3", $"user:alice orders {OrderId} 3",
             "user:bob line_notes 200 1", "user:bob line_notes 210 1", "user:bob order_lines 20 1", $"user:bob orders {OrderId} 1"],
            rows[8..].Order(StringComparer.Ordinal));
        Assert.Equal(["line_notes 200 user:bob", "line_notes 210 user:bob", "order_lines 20 user:bob", $"orders {OrderId} user:bob"], await EdgesAsync(harness));

        // A line deleted for good: its note, whose parent row is missing now, leaves too.
        await harness.ExecuteAsync("DELETE FROM order_lines WHERE id = 20");
        rows = await harness.WaitForChangelogAsync(18);
        Assert.Equal(["user:bob order_lines 20 3", "user:bob line_notes 200 3"], rows[16..]);
        Assert.Equal(["line_notes 210 user:bob", $"orders {OrderId} user:bob"], await EdgesAsync(harness));
    }

    [Fact]
    public async Task Children_of_a_parent_keyed_by_several_columns_move_with_it()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "cascade_composite");
        await harness.ExecuteAsync("""
            CREATE TABLE docs (tenant_id int, id int, owner text, PRIMARY KEY (tenant_id, id));
            CREATE TABLE doc_items (tenant_id int, id int, doc_id int, PRIMARY KEY (tenant_id, id), FOREIGN KEY (tenant_id, doc_id) REFERENCES docs);
            ALTER PUBLICATION synchro_pub ADD TABLE docs, doc_items;
            """);
        var options = harness.Options();
        options.Tables = new TableRegistry()
            .Add(new TableRegistration("docs") { IdColumns = ["tenant_id", "id"], OwnerColumn = "owner", SoftDeleteColumn = null })
            .Add(new TableRegistration("doc_items") { IdColumns = ["tenant_id", "id"], ParentTable = "docs", ParentForeignKeyColumns = ["tenant_id", "doc_id"], SoftDeleteColumn = null });
        await harness.StartAsync(options);
        // Two tenants' docs with the same id: only tenant 1's items follow its doc.
        await harness.ExecuteAsync("""
            INSERT INTO docs VALUES (1, 7, 'alice'), (2, 7, 'alice');
            INSERT INTO doc_items VALUES (1, 70, 7), (1, 71, 7), (2, 70, 7);
            """);
        await harness.WaitForChangelogAsync(5);

        await harness.ExecuteAsync("UPDATE docs SET owner = 'bob' WHERE tenant_id = 1 AND id = 7");
        var rows = await harness.WaitForChangelogAsync(11);

        Assert.Equal(
            ["""user:alice doc_items ["1","70"] 3""", """user:alice doc_items ["1","71"] 3""", """user:bob doc_items ["1","70"] 1""", """user:bob doc_items ["1","71"] 1"""],
            rows[7..].Order(StringComparer.Ordinal));
        Assert.Equal(
            ["""doc_items ["1","70"] user:bob""", """doc_items ["1","71"] user:bob""", """doc_items ["2","70"] user:alice""",
             """docs ["1","7"] user:bob""", """docs ["2","7"] user:alice"""],
            await EdgesAsync(harness));
    }

    [Fact]
    public async Task With_the_option_off_lines_stay_where_they_were_as_in_the_reference()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "cascade_off");
        var options = harness.Options();
        options.CascadeParentMoves = false;
        await harness.StartAsync(options);
        await harness.ExecuteAsync($"""
            INSERT INTO orders (id, user_id) VALUES ('{OrderId}', 'alice');
            INSERT INTO order_lines VALUES (20, '{OrderId}', 1), (21, '{OrderId}', 1);
            """);
        await harness.WaitForChangelogAsync(3);

        await harness.ExecuteAsync($"UPDATE orders SET user_id = 'bob' WHERE id = '{OrderId}'");
        var rows = await harness.WaitForChangelogAsync(5);

        // The issue's "before": the lines' edges and rows stay alice's.
        Assert.Equal([$"user:bob orders {OrderId} 1", $"user:alice orders {OrderId} 3"], rows[3..]);
        Assert.Equal(
            ["order_lines 20 user:alice", "order_lines 21 user:alice", $"orders {OrderId} user:bob"],
            await EdgesAsync(harness));
    }

    [Fact]
    public async Task A_cascade_in_chunks_of_two_writes_what_one_chunk_writes()
    {
        var unchunked = await MoveManyAsync("cascade_whole", chunkRows: null);
        var chunked = await MoveManyAsync("cascade_chunks", chunkRows: 2);

        Assert.Equal(unchunked.Edges, chunked.Edges);
        Assert.Equal(unchunked.Rows.Order(StringComparer.Ordinal), chunked.Rows.Order(StringComparer.Ordinal));
        // 5 orders × (1 + 4 lines + 12 notes) records, each one insert in bob and one delete in alice.
        Assert.Equal(5 * 17 * 2, chunked.Rows.Count);
        Assert.Equal(5 * 17, chunked.Edges.Count);
        Assert.All(chunked.Edges, e => Assert.EndsWith(" user:bob", e, StringComparison.Ordinal));
    }

    private async Task<(List<string> Rows, List<string> Edges)> MoveManyAsync(string name, int? chunkRows)
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, name);
        await harness.ExecuteAsync(Notes);
        var options = harness.Options();
        options.Tables = ThreeLevels();
        if (chunkRows is { } chunk)
            options.CascadeChunkRows = chunk;
        await harness.StartAsync(options);
        // 5 orders, 4 lines each, 3 notes per line: 85 records.
        await harness.ExecuteAsync("""
            INSERT INTO orders (id, user_id) SELECT ('00000000-0000-0000-0000-00000000000' || o)::uuid, 'alice' FROM generate_series(1, 5) o;
            INSERT INTO order_lines SELECT o * 10 + l, ('00000000-0000-0000-0000-00000000000' || o)::uuid, 1 FROM generate_series(1, 5) o, generate_series(1, 4) l;
            INSERT INTO line_notes SELECT (o * 10 + l) * 10 + n, o * 10 + l, 'x' FROM generate_series(1, 5) o, generate_series(1, 4) l, generate_series(1, 3) n;
            """);
        await harness.WaitForChangelogAsync(85);
        await harness.ExecuteAsync("UPDATE orders SET user_id = 'bob'");
        var rows = await harness.WaitForChangelogAsync(85 + 170);
        return (rows[85..], await EdgesAsync(harness));
    }

    private static async Task<List<string>> EdgesAsync(PipelineHarness harness)
    {
        await using var connection = new NpgsqlConnection(harness.ChangelogConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT table_name, record_id, bucket_id FROM sync_bucket_edges ORDER BY 1, 2, 3", connection);
        await using var reader = await command.ExecuteReaderAsync();
        var edges = new List<string>();
        while (await reader.ReadAsync())
            edges.Add($"{reader.GetString(0)} {reader.GetString(1)} {reader.GetString(2)}");
        return edges.Order(StringComparer.Ordinal).ToList();
    }
}
