using Synchro.Pipeline.Registry;
using Synchro.Pipeline.Tests.Infrastructure;

namespace Synchro.Pipeline.Tests.Pipeline;

/// <summary>
/// A registered partitioned table, published with either <c>publish_via_partition_root</c>: with <c>false</c> the server sends
/// each leaf partition as a relation of its own, and its changes, TRUNCATEs and partitions that come and go while streaming
/// all count for the registered table.
/// </summary>
[Collection(PostgresCollection.Name)]
[Trait(TestCategories.Name, TestCategories.VersionSensitive)]
public sealed class PartitionedTableTests(PostgresServerFixture postgres)
{
    // Two levels: by year, and 2026 by hash of the id. The primary key must hold every partition key, so the record id does.
    private const string Schema = """
        CREATE TABLE events (id int NOT NULL, created date NOT NULL, user_id text NOT NULL, total int NOT NULL DEFAULT 0,
            PRIMARY KEY (id, created)) PARTITION BY RANGE (created);
        CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
        CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01') PARTITION BY HASH (id);
        CREATE TABLE events_2026_a PARTITION OF events_2026 FOR VALUES WITH (MODULUS 2, REMAINDER 0);
        CREATE TABLE events_2026_b PARTITION OF events_2026 FOR VALUES WITH (MODULUS 2, REMAINDER 1);
        ALTER PUBLICATION synchro_pub ADD TABLE events;
        """;

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Changes_in_every_partition_count_for_the_registered_table_and_a_move_between_partitions_is_a_key_change(bool viaRoot)
    {
        await using var harness = await CreateAsync(viaRoot ? "part_changes_root" : "part_changes_leaf", viaRoot);
        await harness.StartAsync(Options(harness));

        await harness.ExecuteAsync("""
            INSERT INTO events VALUES (1, '2025-03-01', 'alice'), (2, '2026-03-01', 'bob'), (3, '2026-03-01', 'alice');
            UPDATE events SET total = 5 WHERE id = 2;
            UPDATE events SET user_id = 'carol' WHERE id = 3;
            """);
        // The row moves to another partition: its record id holds the partition key, so it is another record.
        await harness.ExecuteAsync("UPDATE events SET created = '2026-06-01' WHERE id = 1");
        await harness.ExecuteAsync("DELETE FROM events WHERE id = 2");

        var rows = await harness.WaitForChangelogAsync(9);
        Assert.Equal(
        [
            """user:alice events ["1","2025-03-01"] 1""",
            """user:bob events ["2","2026-03-01"] 1""",
            """user:alice events ["3","2026-03-01"] 1""",
            """user:bob events ["2","2026-03-01"] 2""",
            """user:carol events ["3","2026-03-01"] 1""",
            """user:alice events ["3","2026-03-01"] 3""",
            """user:alice events ["1","2025-03-01"] 3""",
            """user:alice events ["1","2026-06-01"] 1""",
            """user:bob events ["2","2026-03-01"] 3""",
        ], rows);
    }

    [Fact]
    public async Task A_truncate_of_one_partition_deletes_the_records_it_held_and_no_others()
    {
        await using var harness = await CreateAsync("part_truncate_leaf", viaRoot: false);
        await harness.StartAsync(Options(harness));
        await harness.ExecuteAsync("INSERT INTO events SELECT g, date '2025-01-01' + g, 'u' || (g % 3) FROM generate_series(1, 20) g");
        await harness.ExecuteAsync("INSERT INTO events SELECT g, date '2026-01-01' + g, 'u' || (g % 3) FROM generate_series(21, 60) g");
        await harness.WaitForChangelogAsync(60);
        var inLeafA = await RecordsAsync(harness, "events_2026_a");
        var in2025 = await RecordsAsync(harness, "events_2025");
        Assert.NotEmpty(inLeafA);

        // A leaf of the sub-partitioned partition, then a partition of the root, then the root itself.
        await harness.ExecuteAsync("TRUNCATE events_2026_a");
        await harness.ExecuteAsync("INSERT INTO events VALUES (100, '2025-05-05', 'u9')");
        var rows = await harness.WaitForChangelogAsync(60 + inLeafA.Count + 1);
        Assert.Equal(inLeafA.Order(StringComparer.Ordinal), rows.Skip(60).Take(inLeafA.Count).Select(DeletedRecord));
        Assert.Equal("""user:u9 events ["100","2025-05-05"] 1""", rows[^1]);

        await harness.ExecuteAsync("TRUNCATE events_2025");
        rows = await harness.WaitForChangelogAsync(60 + inLeafA.Count + 1 + in2025.Count + 1);
        Assert.Equal(
            in2025.Append("""["100","2025-05-05"]""").Order(StringComparer.Ordinal),
            rows.Skip(60 + inLeafA.Count + 1).Select(DeletedRecord));

        var left = await RecordsAsync(harness, "events");
        Assert.Equal(left.Order(StringComparer.Ordinal), await EdgeRecordsAsync(harness));
        await harness.ExecuteAsync("TRUNCATE events");
        rows = await harness.WaitForChangelogAsync(60 + inLeafA.Count + 1 + in2025.Count + 1 + left.Count);
        Assert.Equal(left.Order(StringComparer.Ordinal), rows.Skip(rows.Count - left.Count).Select(DeletedRecord));
        Assert.Empty(await EdgeRecordsAsync(harness));
    }

    [Fact]
    public async Task A_truncate_of_one_partition_published_via_the_root_reaches_no_one_as_the_server_sends_none()
    {
        await using var harness = await CreateAsync("part_truncate_root", viaRoot: true);
        await harness.StartAsync(Options(harness));
        await harness.ExecuteAsync("INSERT INTO events VALUES (1, '2025-03-01', 'alice'), (2, '2026-03-01', 'bob')");
        await harness.WaitForChangelogAsync(2);

        await harness.ExecuteAsync("TRUNCATE events_2025");
        await harness.ExecuteAsync("TRUNCATE events");
        var rows = await harness.WaitForChangelogAsync(3);
        // Only the root's TRUNCATE arrived: the record the partition's TRUNCATE removed is deleted by it, not before.
        Assert.Equal("""user:alice events ["1","2025-03-01"] 3""", rows[2]);
        Assert.Equal(4, rows.Count);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Partitions_created_attached_and_detached_while_streaming_count_from_then_on(bool viaRoot)
    {
        await using var harness = await CreateAsync(viaRoot ? "part_attach_root" : "part_attach_leaf", viaRoot);
        await harness.StartAsync(Options(harness));
        await harness.ExecuteAsync("INSERT INTO events VALUES (1, '2025-03-01', 'alice')");
        await harness.WaitForChangelogAsync(1);

        await harness.ExecuteAsync("""
            CREATE TABLE events_2027 PARTITION OF events FOR VALUES FROM ('2027-01-01') TO ('2028-01-01');
            INSERT INTO events VALUES (2, '2027-03-01', 'bob');
            """);
        await harness.ExecuteAsync("""
            CREATE TABLE events_2028 (LIKE events INCLUDING ALL);
            INSERT INTO events_2028 VALUES (3, '2028-03-01', 'carol');
            ALTER TABLE events ATTACH PARTITION events_2028 FOR VALUES FROM ('2028-01-01') TO ('2029-01-01');
            INSERT INTO events VALUES (4, '2028-04-01', 'carol');
            UPDATE events SET total = 1 WHERE id = 3;
            """);
        await harness.WaitForChangelogAsync(4);

        // Detached, then published as a table of its own: its changes are its own now, not the registered table's.
        await harness.ExecuteAsync("ALTER TABLE events DETACH PARTITION events_2025");
        await harness.ExecuteAsync($"ALTER PUBLICATION {PipelineHarness.Publication} ADD TABLE events_2025");
        await harness.ExecuteAsync("""
            INSERT INTO events_2025 VALUES (5, '2025-04-01', 'dave');
            UPDATE events_2025 SET total = 7 WHERE id = 1;
            INSERT INTO events VALUES (6, '2027-04-01', 'erin');
            """);

        var rows = await harness.WaitForChangelogAsync(5);
        Assert.Equal(
        [
            """user:alice events ["1","2025-03-01"] 1""",
            """user:bob events ["2","2027-03-01"] 1""",
            """user:carol events ["4","2028-04-01"] 1""",
            // Written before the ATTACH, so never sent: its first change after it brings the record into its bucket.
            """user:carol events ["3","2028-03-01"] 1""",
            """user:erin events ["6","2027-04-01"] 1""",
        ], rows);
    }

    [Fact]
    public async Task Existing_rows_of_every_partition_get_their_edges_from_the_initial_snapshot()
    {
        await using var harness = await CreateAsync("part_snapshot", viaRoot: false);
        await harness.ExecuteAsync("INSERT INTO events VALUES (1, '2025-03-01', 'alice'), (2, '2026-03-01', 'bob'), (3, '2026-03-02', 'carol')");
        await harness.StartAsync(Options(harness));
        Assert.Equal(["""["1","2025-03-01"]""", """["2","2026-03-01"]""", """["3","2026-03-02"]"""], await EdgeRecordsAsync(harness));

        await harness.ExecuteAsync("UPDATE events SET user_id = 'dave' WHERE id = 2");
        Assert.Equal(["""user:dave events ["2","2026-03-01"] 1""", """user:bob events ["2","2026-03-01"] 3"""], await harness.WaitForChangelogAsync(2));
    }

    [Fact]
    public async Task A_truncate_of_a_partition_whose_records_cannot_be_told_from_their_ids_stops_the_pipeline_before_it_with_what_to_do()
    {
        // The registered table is itself a partition; its id leaves out the partition key above it, which its leaves' bounds include.
        await using var harness = await PipelineHarness.CreateAsync(postgres, "part_truncate_unattributable");
        await harness.ExecuteAsync("""
            CREATE TABLE events (id int NOT NULL, created date NOT NULL, user_id text NOT NULL) PARTITION BY RANGE (created);
            CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01') PARTITION BY HASH (id);
            ALTER TABLE events_2026 ADD PRIMARY KEY (id);
            CREATE TABLE events_2026_a PARTITION OF events_2026 FOR VALUES WITH (MODULUS 2, REMAINDER 0);
            CREATE TABLE events_2026_b PARTITION OF events_2026 FOR VALUES WITH (MODULUS 2, REMAINDER 1);
            ALTER PUBLICATION synchro_pub ADD TABLE events;
            """);
        var options = harness.Options();
        options.Tables = PipelineHarness.Registry().Add(new TableRegistration("events_2026") { OwnerColumn = "user_id", SoftDeleteColumn = null });
        await harness.StartAsync(options);
        await harness.ExecuteAsync("INSERT INTO events SELECT g, '2026-02-01', 'alice' FROM generate_series(1, 4) g");
        await harness.WaitForChangelogAsync(4);

        await harness.ExecuteAsync("TRUNCATE events_2026_a");
        var error = await Assert.ThrowsAsync<WalPipelineException>(() => harness.Running.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Contains("truncates partition \"public\".\"events_2026_a\" of public.events_2026, and the pipeline cannot tell which records the partition held", error.Message, StringComparison.Ordinal);
        Assert.Contains("synchro-pipeline skip --lsn", error.Message, StringComparison.Ordinal);
        Assert.Equal(4, (await harness.ChangelogAsync()).Count);
    }

    private async Task<PipelineHarness> CreateAsync(string name, bool viaRoot)
    {
        var harness = await PipelineHarness.CreateAsync(postgres, name);
        await harness.ExecuteAsync(Schema);
        if (viaRoot)
            await harness.ExecuteAsync($"ALTER PUBLICATION {PipelineHarness.Publication} SET (publish_via_partition_root = true)");
        return harness;
    }

    private static WalPipelineOptions Options(PipelineHarness harness)
    {
        var options = harness.Options();
        options.Tables = PipelineHarness.Registry().Add(new TableRegistration("events") { IdColumns = ["id", "created"], OwnerColumn = "user_id", SoftDeleteColumn = null });
        return options;
    }

    /// <summary>The record ids of the rows in <paramref name="relation"/> now.</summary>
    private static async Task<List<string>> RecordsAsync(PipelineHarness harness, string relation)
    {
        var ids = await harness.ScalarAsync<string>(
            $"SELECT coalesce(string_agg(json_build_array(id::text, created::text)::jsonb::text, '|'), '') FROM {relation}");
        return ids.Length == 0 ? [] : [.. ids.Split('|').Select(id => id.Replace(" ", "", StringComparison.Ordinal))];
    }

    private static async Task<List<string>> EdgeRecordsAsync(PipelineHarness harness)
    {
        var ids = await harness.ScalarAsync<string>(
            "SELECT coalesce(string_agg(record_id, '|' ORDER BY record_id COLLATE \"C\"), '') FROM sync_bucket_edges WHERE table_name = 'events'");
        return ids.Length == 0 ? [] : [.. ids.Split('|')];
    }

    private static string DeletedRecord(string row)
    {
        var parts = row.Split(' ');
        Assert.Equal("3", parts[3]);
        return parts[2];
    }
}
