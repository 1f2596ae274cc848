using System.Globalization;
using Npgsql;
using Synchro.Pipeline.Replication;
using Synchro.Pipeline.Tests.Infrastructure;

namespace Synchro.Pipeline.Tests.Replication;

/// <summary>The start-up checks on partitioned tables: a root and a sub-partitioned partition, two levels of partition keys.</summary>
[Collection(PostgresCollection.Name)]
[Trait(TestCategories.Name, TestCategories.VersionSensitive)]
public sealed class PartitionedTableChecksTests(PostgresServerFixture postgres)
{
    private const string Publication = "sync_pub";

    // events is partitioned by created; events_2026 again by id (hash), so the key (id, created) covers both levels.
    private const string Events = """
        CREATE TABLE events (id bigint NOT NULL, created date NOT NULL, owner_id text, deleted_at timestamptz{0}) PARTITION BY RANGE (created);
        CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
        CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01') PARTITION BY HASH (id);
        CREATE TABLE events_2026_a PARTITION OF events_2026 FOR VALUES WITH (MODULUS 2, REMAINDER 0);
        CREATE TABLE events_2026_b PARTITION OF events_2026 FOR VALUES WITH (MODULUS 2, REMAINDER 1);
        """;

    private static readonly string s_keyedEvents = string.Format(CultureInfo.InvariantCulture, Events, ", PRIMARY KEY (id, created)");
    private static readonly string s_unkeyedEvents = string.Format(CultureInfo.InvariantCulture, Events, "");

    private static readonly RegisteredTable s_events = new("public", "events", ["id", "created"], ["id", "created", "owner_id", "deleted_at"]);

    private const string PerPartitionNotice =
        "Publication \"sync_pub\" publishes each partition of \"public\".\"events\" under the partition's own name (publish_via_partition_root = false). "
        + "DETACH PARTITION or DROP of a partition sends no deletes: clients keep its records; TRUNCATE the partition first if they must drop them.";

    [Fact]
    public async Task A_partitioned_table_in_a_publication_without_publish_via_partition_root_is_published_through_its_partitions()
    {
        var database = await DatabaseAsync(s_keyedEvents, "CREATE PUBLICATION sync_pub FOR TABLE events");

        var result = await CheckAsync(database);

        Assert.Equal(PerPartitionNotice, Assert.Single(result.Warnings));
    }

    [Fact]
    public async Task Publish_via_partition_root_is_explained_and_its_suggested_setting_gives_truncates_of_one_partition_back()
    {
        var database = await DatabaseAsync(s_keyedEvents, "CREATE PUBLICATION sync_pub FOR TABLE events WITH (publish_via_partition_root = true)");

        var warning = Assert.Single((await CheckAsync(database)).Warnings);

        Assert.Equal(
            "Publication \"sync_pub\" publishes the partitions of \"public\".\"events\" under the name of the partitioned table (publish_via_partition_root = true), "
            + "so a TRUNCATE of one partition is not sent and clients would keep that partition's records; empty a partition with DELETE instead, or publish "
            + "each partition under its own name with ALTER PUBLICATION \"sync_pub\" SET (publish_via_partition_root = false); "
            + "DETACH PARTITION or DROP of a partition sends no deletes: clients keep its records; DELETE its rows first if they must drop them.",
            warning);
        await Sql.ExecuteAsync(database, Statement(warning, "ALTER PUBLICATION", ";"));
        Assert.Equal(PerPartitionNotice, Assert.Single((await CheckAsync(database)).Warnings));
    }

    [Fact]
    public async Task Publish_via_partition_root_is_not_suggested_off_while_a_partitioned_table_has_a_column_list_which_forbids_it()
    {
        var database = await DatabaseAsync(
            s_keyedEvents, "CREATE PUBLICATION sync_pub FOR TABLE events (id, created, owner_id, deleted_at) WITH (publish_via_partition_root = true)");

        var warning = Assert.Single((await CheckAsync(database)).Warnings);

        Assert.Contains("so a TRUNCATE of one partition is not sent and clients would keep that partition's records; empty a partition with DELETE instead. "
            + "DETACH PARTITION", warning, StringComparison.Ordinal);
        Assert.DoesNotContain("SET (publish_via_partition_root = false)", warning, StringComparison.Ordinal);
        await Assert.ThrowsAsync<PostgresException>(() => Sql.ExecuteAsync(database, "ALTER PUBLICATION sync_pub SET (publish_via_partition_root = false)"));
    }

    [Fact]
    public async Task A_publication_naming_one_partition_warns_of_the_others_and_adding_the_table_covers_them()
    {
        var database = await DatabaseAsync(s_keyedEvents, "CREATE PUBLICATION sync_pub FOR TABLE events_2026");

        var warnings = (await CheckAsync(database)).Warnings;

        Assert.Equal(2, warnings.Count);
        Assert.Equal(
            "Publication \"sync_pub\" does not include partition \"public\".\"events_2025\" of table \"public\".\"events\", so its changes will not reach "
            + "the changelog; add the whole table, with the partitions created later, with ALTER PUBLICATION \"sync_pub\" ADD TABLE \"public\".\"events\";",
            warnings[0]);
        Assert.Equal(PerPartitionNotice, warnings[1]);
        await Sql.ExecuteAsync(database, Statement(warnings[0], "ALTER PUBLICATION", ";"));
        Assert.Equal(PerPartitionNotice, Assert.Single((await CheckAsync(database)).Warnings));
    }

    [Fact]
    public async Task A_partition_created_after_a_publication_that_lists_partitions_is_reported_and_the_fix_runs()
    {
        var database = await DatabaseAsync(
            s_keyedEvents,
            "CREATE PUBLICATION sync_pub FOR TABLE events_2025, events_2026",
            "CREATE TABLE events_2027 PARTITION OF events FOR VALUES FROM ('2027-01-01') TO ('2028-01-01')",
            "CREATE TABLE events_2028 PARTITION OF events FOR VALUES FROM ('2028-01-01') TO ('2029-01-01')");

        var warning = Assert.Single((await CheckAsync(database)).Warnings, w => w.Contains("does not include", StringComparison.Ordinal));

        Assert.StartsWith(
            "Publication \"sync_pub\" does not include partitions \"public\".\"events_2027\", \"public\".\"events_2028\" of table \"public\".\"events\", "
            + "so their changes will not reach the changelog;",
            warning,
            StringComparison.Ordinal);
        await Sql.ExecuteAsync(database, Statement(warning, "ALTER PUBLICATION", ";"));
        await Sql.ExecuteAsync(database, "CREATE TABLE events_2029 PARTITION OF events FOR VALUES FROM ('2029-01-01') TO ('2030-01-01')");
        Assert.Equal(PerPartitionNotice, Assert.Single((await CheckAsync(database)).Warnings));
    }

    [Fact]
    public async Task A_publication_with_no_partition_of_the_only_registered_table_is_an_error_whose_fix_runs()
    {
        var database = await DatabaseAsync(s_keyedEvents, "CREATE TABLE other (id bigint PRIMARY KEY)", "CREATE PUBLICATION sync_pub FOR TABLE other");

        var error = Assert.Single((await CheckFailsAsync(database)).Errors);

        Assert.Contains("includes none of the registered tables", error, StringComparison.Ordinal);
        await Sql.ExecuteAsync(database, Statement(error, "ALTER PUBLICATION", ";"));
        Assert.Equal(PerPartitionNotice, Assert.Single((await CheckAsync(database)).Warnings));
    }

    [Fact]
    public async Task A_partitioned_table_without_partitions_counts_as_published_when_the_publication_names_it()
    {
        var database = await DatabaseAsync(
            "CREATE TABLE events (id bigint, created date, owner_id text, deleted_at timestamptz, PRIMARY KEY (id, created)) PARTITION BY RANGE (created)",
            "CREATE TABLE other (id bigint PRIMARY KEY)",
            "CREATE PUBLICATION sync_pub FOR TABLE other");

        var error = Assert.Single((await CheckFailsAsync(database)).Errors);

        Assert.EndsWith("ALTER PUBLICATION \"sync_pub\" ADD TABLE \"public\".\"events\";", error, StringComparison.Ordinal);
        await Sql.ExecuteAsync(database, Statement(error, "ALTER PUBLICATION", ";"));
        Assert.Equal(PerPartitionNotice, Assert.Single((await CheckAsync(database)).Warnings));
    }

    [Fact]
    public async Task An_id_without_the_partition_key_is_not_unique_and_the_error_names_the_key_to_register()
    {
        var database = await DatabaseAsync(s_keyedEvents, "CREATE PUBLICATION sync_pub FOR TABLE events");
        var byId = s_events with { IdColumns = ["id"] };

        var error = Assert.Single((await CheckFailsAsync(database, [byId])).Errors);

        Assert.Equal(
            "Table \"public\".\"events\": its id column \"id\" is not unique: no primary key or unique index is on it alone. Two rows could then share a "
            + "record id, and the changes of one would be written as the other's (a delete of one would take the other out of its buckets). Register the "
            + "table with IdColumns [\"id\", \"created\"], the columns of its primary key (\"id\", \"created\") (its record ids then name one row each); a unique "
            + "key on a partitioned table must include its partition key (\"created\", \"id\"), so none can be on the id column(s) alone (and only an id that "
            + "includes it lets a TRUNCATE of one partition become deletes of the records it held).",
            error);
        Assert.Equal(PerPartitionNotice, Assert.Single((await CheckAsync(database)).Warnings));
    }

    [Fact]
    public async Task A_partitioned_table_without_a_key_is_given_one_that_includes_the_partition_key_of_every_level()
    {
        var database = await DatabaseAsync(s_unkeyedEvents, "CREATE PUBLICATION sync_pub FOR TABLE events");
        var byId = s_events with { IdColumns = ["id"] };

        var errors = (await CheckFailsAsync(database, [byId])).Errors;

        var error = Assert.Single(errors, e => e.Contains("is not unique", StringComparison.Ordinal));
        Assert.EndsWith(
            "As a unique key on a partitioned table must include its partition key (\"created\", \"id\"), register the table with "
            + "IdColumns [\"id\", \"created\"] and give it that key: ALTER TABLE \"public\".\"events\" ADD PRIMARY KEY (\"id\", \"created\");",
            error,
            StringComparison.Ordinal);
        await Sql.ExecuteAsync(database, Statement(error, "ALTER TABLE", ";"));
        Assert.Equal(PerPartitionNotice, Assert.Single((await CheckAsync(database)).Warnings));
    }

    [Fact]
    public async Task Replica_identity_is_checked_on_every_leaf_partition_and_each_suggested_statement_runs()
    {
        var database = await DatabaseAsync(
            s_unkeyedEvents,
            "CREATE UNIQUE INDEX events_key ON events (id, created)",
            "ALTER TABLE events_2026_b REPLICA IDENTITY NOTHING",
            "CREATE PUBLICATION sync_pub FOR TABLE events");

        // The partitioned table's own setting reaches none of its partitions.
        await Sql.ExecuteAsync(database, "ALTER TABLE events REPLICA IDENTITY FULL");
        var errors = (await CheckFailsAsync(database)).Errors;

        Assert.Equal(3, errors.Count);
        Assert.Equal(
            "Partition \"public\".\"events_2025\" of table \"public\".\"events\" has no primary key and REPLICA IDENTITY DEFAULT, so its deletes carry no id "
            + "and cannot be attributed; add one with ALTER TABLE \"public\".\"events_2025\" ADD PRIMARY KEY (\"id\", \"created\"), or run "
            + "ALTER TABLE \"public\".\"events_2025\" REPLICA IDENTITY FULL.",
            errors[0]);
        Assert.StartsWith("Partition \"public\".\"events_2026_a\" of table \"public\".\"events\" has no primary key and REPLICA IDENTITY DEFAULT", errors[1], StringComparison.Ordinal);
        Assert.StartsWith("Partition \"public\".\"events_2026_b\" of table \"public\".\"events\" has REPLICA IDENTITY NOTHING", errors[2], StringComparison.Ordinal);
        await Sql.ExecuteAsync(database, Statement(errors[0], "ALTER TABLE \"public\".\"events_2025\" ADD", ")"));
        foreach (var error in errors.Skip(1))
            await Sql.ExecuteAsync(database, Statement(error, "ALTER TABLE", "FULL"));
        Assert.Equal(PerPartitionNotice, Assert.Single((await CheckAsync(database)).Warnings));
    }

    [Fact]
    public async Task A_column_list_on_one_partition_is_checked_and_republishing_that_partition_fixes_it()
    {
        var database = await DatabaseAsync(s_keyedEvents, "CREATE PUBLICATION sync_pub FOR TABLE events_2025 (id, created, deleted_at), events_2026");

        var error = Assert.Single((await CheckFailsAsync(database)).Errors);

        Assert.Equal(
            "Publication \"sync_pub\" publishes table \"public\".\"events\" (as \"public\".\"events_2025\") with a column list that leaves out \"owner_id\", "
            + "which the table registry needs; publish every column with ALTER PUBLICATION \"sync_pub\" DROP TABLE \"public\".\"events_2025\"; "
            + "ALTER PUBLICATION \"sync_pub\" ADD TABLE \"public\".\"events_2025\";",
            error);
        await Sql.ExecuteAsync(database, Statement(error, "ALTER PUBLICATION \"sync_pub\" DROP", "ADD TABLE \"public\".\"events_2025\";"));
        Assert.Equal(PerPartitionNotice, Assert.Single((await CheckAsync(database)).Warnings));
    }

    [Fact]
    public async Task A_registered_partition_published_under_its_unregistered_root_is_an_error_whose_fix_runs()
    {
        var database = await DatabaseAsync(s_keyedEvents, "CREATE PUBLICATION sync_pub FOR TABLE events WITH (publish_via_partition_root = true)");
        RegisteredTable[] partition = [s_events with { Name = "events_2026" }];

        var error = Assert.Single((await CheckFailsAsync(database, partition)).Errors);

        Assert.Equal(
            "Publication \"sync_pub\" publishes the changes of table \"public\".\"events_2026\" as changes of its partitioned ancestor \"public\".\"events\" "
            + "(publish_via_partition_root = true), which is not registered, so they would not reach the changelog; register \"public\".\"events\" instead of "
            + "\"public\".\"events_2026\", or run ALTER PUBLICATION \"sync_pub\" SET (publish_via_partition_root = false);",
            error);
        await Sql.ExecuteAsync(database, Statement(error, "ALTER PUBLICATION", ";"));
        Assert.Equal(
            "Publication \"sync_pub\" publishes each partition of \"public\".\"events_2026\" under the partition's own name (publish_via_partition_root = false). "
            + "DETACH PARTITION or DROP of a partition sends no deletes: clients keep its records; TRUNCATE the partition first if they must drop them.",
            Assert.Single((await CheckAsync(database, partition)).Warnings));
    }

    [Fact]
    public async Task A_registered_partition_whose_id_leaves_out_the_partition_key_above_it_is_warned_that_truncating_a_partition_stops_the_pipeline()
    {
        var database = await DatabaseAsync(s_unkeyedEvents, "ALTER TABLE events_2026 ADD PRIMARY KEY (id)", "CREATE PUBLICATION sync_pub FOR TABLE events");
        var byId = s_events with { Name = "events_2026", IdColumns = ["id"] };

        var warning = Assert.Single((await CheckAsync(database, [byId])).Warnings);

        Assert.Equal(
            "Publication \"sync_pub\" publishes each partition of \"public\".\"events_2026\" under the partition's own name (publish_via_partition_root = false), "
            + "and its registered id columns (\"id\") leave out the partition key \"created\" of the tables above it, which every partition's bounds include; "
            + "so a TRUNCATE of one partition will stop the pipeline, as it cannot tell which records the partition held. To avoid that, empty a partition "
            + "with DELETE instead, or register the table with IdColumns [\"id\", \"created\"], which a unique key and every partition's replica identity "
            + "must then include. DETACH PARTITION or DROP of a partition sends no deletes: clients keep its records; DELETE its rows first if "
            + "they must drop them.",
            warning);
        await Sql.ExecuteAsync(database, "ALTER TABLE events_2026 ADD UNIQUE (id, created)");
        // The partitioned table's own identity too: with publish_via_partition_root = true the server sends old rows by it.
        await Sql.ExecuteAsync(database, "ALTER TABLE events_2026 REPLICA IDENTITY FULL; ALTER TABLE events_2026_a REPLICA IDENTITY FULL; ALTER TABLE events_2026_b REPLICA IDENTITY FULL");
        Assert.Equal(
            "Publication \"sync_pub\" publishes each partition of \"public\".\"events_2026\" under the partition's own name (publish_via_partition_root = false). "
            + "DETACH PARTITION or DROP of a partition sends no deletes: clients keep its records; TRUNCATE the partition first if they must drop them.",
            Assert.Single((await CheckAsync(database, [byId with { IdColumns = ["id", "created"] }])).Warnings));
    }

    /// <summary>The SQL in <paramref name="message"/> from the last <paramref name="start"/> through the next <paramref name="end"/>.</summary>
    private static string Statement(string message, string start, string end)
    {
        var from = message.LastIndexOf(start, StringComparison.Ordinal);
        Assert.True(from >= 0, message);
        var to = message.IndexOf(end, from, StringComparison.Ordinal);
        Assert.True(to >= 0, message);
        return message[from..(to + end.Length)];
    }

    private async Task<string> DatabaseAsync(params string[] setup)
    {
        var database = await postgres.CreateDatabaseAsync("partitions");
        foreach (var sql in setup)
            await Sql.ExecuteAsync(database, sql);
        return database;
    }

    private static async Task<StartupCheckResult> CheckAsync(string database, IReadOnlyList<RegisteredTable>? tables = null)
    {
        await using var connection = new NpgsqlConnection(database);
        await connection.OpenAsync();
        return await StartupChecks.RunAsync(connection, TestSlots.NewName("checks"), Publication, tables ?? [s_events], busySendersFail: true, CancellationToken.None);
    }

    private static Task<WalPipelineConfigurationException> CheckFailsAsync(string database, IReadOnlyList<RegisteredTable>? tables = null) =>
        Assert.ThrowsAsync<WalPipelineConfigurationException>(() => CheckAsync(database, tables));
}
