using System.Text.Json.Nodes;
using Npgsql;
using Synchro.Pipeline.Changelog;
using Synchro.Pipeline.Protocol;
using Synchro.Pipeline.Replication;
using Synchro.Pipeline.Tests.Infrastructure;

namespace Synchro.Pipeline.Tests.Changelog;

[Collection(PostgresCollection.Name)]
public sealed class ChangelogStoreTests(PostgresServerFixture postgres)
{
    private const string Orders = "public.orders";
    private const string Items = "sales.items";
    private const string Slot = "synchro_slot";

    private static readonly string[] s_unicodeBuckets = ["user:Zoë", "user:東京", "user:🚀", "global", "user:a'b\"c,d\\e{f}", "user: spaced "];

    private static readonly RecordKey s_order1 = new(Orders, "1");
    private static readonly RecordKey s_order2 = new(Orders, "2");
    private static readonly RecordKey s_order3 = new(Orders, "3");
    private static readonly RecordKey s_item1 = new(Items, "1");

    // A system identifier past 2^63, stored as the same 64 bits in a BIGINT.
    private static readonly SourceIdentity s_source = new(0x9A3C_0000_1234_5678, 3, 16_384, "app");

    [Fact]
    public async Task Changelog_rows_are_stored_with_seq_in_input_order()
    {
        await using var connection = await OpenMigratedAsync("changelog_order");
        var operations = new[] { ChangeOperation.Insert, ChangeOperation.Update, ChangeOperation.Delete };
        // Deliberately not sorted by any column, so only the input order explains the seq order.
        var rows = Enumerable.Range(0, 600)
            .Select(i => new ChangelogRow(s_unicodeBuckets[(i * 7) % s_unicodeBuckets.Length], i % 2 == 0 ? Orders : Items, ((i * 389) % 1000).ToString("D", null), operations[(i * 5) % 3]))
            .ToList();

        await ChangelogStore.WriteChangelogAsync(connection, rows, default);

        var stored = await SidecarDatabase.RowsAsync(connection, "SELECT bucket_id, table_name, record_id, operation FROM sync_changelog ORDER BY seq");
        Assert.Equal(rows.Select(r => $"{r.BucketId}|{r.TableName}|{r.RecordId}|{(short)r.Operation}"), stored);
        Assert.Equal(["1", "2", "3"], await SidecarDatabase.RowsAsync(connection, "SELECT DISTINCT operation FROM sync_changelog ORDER BY 1"));
        Assert.Equal(s_unicodeBuckets.Order(StringComparer.Ordinal), (await SidecarDatabase.RowsAsync(connection, "SELECT DISTINCT bucket_id FROM sync_changelog")).Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task A_later_write_gets_higher_seq_than_every_earlier_row()
    {
        await using var connection = await OpenMigratedAsync("changelog_later");
        await ChangelogStore.WriteChangelogAsync(connection, [new("user:b", Orders, "1", ChangeOperation.Insert), new("user:a", Orders, "2", ChangeOperation.Insert)], default);

        await ChangelogStore.WriteChangelogAsync(connection, [new("user:a", Orders, "1", ChangeOperation.Delete)], default);

        Assert.Equal(
            ["user:b|1|1", "user:a|2|1", "user:a|1|3"],
            await SidecarDatabase.RowsAsync(connection, "SELECT bucket_id, record_id, operation FROM sync_changelog ORDER BY seq"));
        Assert.Equal(true, await SidecarDatabase.ScalarAsync(connection, "SELECT bool_and(created_at IS NOT NULL) FROM sync_changelog"));
    }

    [Fact]
    public async Task Empty_inputs_make_no_round_trip()
    {
        var connectionString = await SidecarDatabase.CreateAsync(postgres, "store_empty");
        // A closed connection fails any round trip, so these calls prove there is none.
        await using var closed = new NpgsqlConnection(connectionString);

        await ChangelogStore.WriteChangelogAsync(closed, [], default);
        await ChangelogStore.ApplyEdgesAsync(closed, [], [], default);
        await ChangelogStore.WriteRuleFailuresAsync(closed, [], default);
        Assert.Empty(await ChangelogStore.LoadEdgesAsync(closed, [], default));
    }

    [Fact]
    public async Task Edges_round_trip_per_record_and_records_without_edges_are_absent()
    {
        await using var connection = await OpenMigratedAsync("edges_round_trip");
        await ChangelogStore.ApplyEdgesAsync(
            connection,
            [(s_order1, "user:Zoë"), (s_order1, "global"), (s_order2, "user:東京"), (s_item1, "user:Zoë"), (s_order2, "user:a'b\"c,d\\e{f}")],
            [],
            default);

        var edges = await ChangelogStore.LoadEdgesAsync(connection, [s_order1, s_order2, s_order3, s_item1, new(Items, "2")], default);

        Assert.Equal(3, edges.Count);
        Assert.Equal(["global", "user:Zoë"], edges[s_order1].Order(StringComparer.Ordinal));
        Assert.Equal(["user:a'b\"c,d\\e{f}", "user:東京"], edges[s_order2].Order(StringComparer.Ordinal));
        Assert.Equal(["user:Zoë"], edges[s_item1]);
        Assert.False(edges.ContainsKey(s_order3));
    }

    [Fact]
    public async Task Loading_the_same_record_twice_returns_its_edges_once()
    {
        await using var connection = await OpenMigratedAsync("edges_duplicate_keys");
        await ChangelogStore.ApplyEdgesAsync(connection, [(s_order1, "global")], [], default);

        var edges = await ChangelogStore.LoadEdgesAsync(connection, [s_order1, s_order1], default);

        Assert.Equal(["global"], edges[s_order1]);
    }

    [Fact]
    public async Task Adding_an_edge_that_exists_is_refused_not_duplicated()
    {
        await using var connection = await OpenMigratedAsync("edges_conflict");
        await ChangelogStore.ApplyEdgesAsync(connection, [(s_order1, "global"), (s_order2, "global")], [], default);

        // The writer never does this (it adds only edges missing from what it loaded); if it did, the batch must fail.
        var error = await Assert.ThrowsAsync<PostgresException>(() => ChangelogStore.ApplyEdgesAsync(connection, [(s_order1, "global")], [], default));

        Assert.Equal(PostgresErrorCodes.UniqueViolation, error.SqlState);
        Assert.Equal(2, await SidecarDatabase.CountAsync(connection, "sync_bucket_edges"));
    }

    [Fact]
    public async Task Removals_are_applied_before_additions()
    {
        await using var connection = await OpenMigratedAsync("edges_remove_then_add");
        await ChangelogStore.ApplyEdgesAsync(connection, [(s_order1, "user:a"), (s_order1, "user:b"), (s_order2, "user:a")], [], default);

        await ChangelogStore.ApplyEdgesAsync(
            connection,
            added: [(s_order1, "user:a"), (s_order1, "user:c")],
            removed: [(s_order1, "user:a"), (s_order1, "user:b"), (s_order3, "user:absent")],
            default);

        var edges = await ChangelogStore.LoadEdgesAsync(connection, [s_order1, s_order2], default);
        Assert.Equal(["user:a", "user:c"], edges[s_order1].Order(StringComparer.Ordinal));
        Assert.Equal(["user:a"], edges[s_order2]);
    }

    [Fact]
    public async Task Bulk_writes_spanning_many_copy_flushes_store_every_row_in_order_and_load_every_edge()
    {
        await using var connection = await OpenMigratedAsync("store_bulk");
        // About 75 bytes a row: each COPY flushes its 64 KiB buffer several times within one statement.
        const int Rows = 5_000;
        var records = Enumerable.Range(0, Rows).Select(i => new RecordKey(Orders, $"00000000-0000-4000-8000-{i:x12}")).ToList();
        var edges = records.Select((r, i) => (Record: r, BucketId: $"user:{i % 100:D3}")).ToList();
        var changelog = edges.Select(e => new ChangelogRow(e.BucketId, e.Record.TableName, e.Record.RecordId, ChangeOperation.Insert)).ToList();

        await using (var transaction = await connection.BeginTransactionAsync())
        {
            await ChangelogStore.WriteChangelogAsync(connection, changelog, default);
            await ChangelogStore.ApplyEdgesAsync(connection, edges, [], default);
            await transaction.CommitAsync();
        }
        var loaded = await ChangelogStore.LoadEdgesAsync(connection, records, default);

        Assert.Equal(
            changelog.Select(r => $"{r.BucketId}|{r.TableName}|{r.RecordId}|1"),
            await SidecarDatabase.RowsAsync(connection, "SELECT bucket_id, table_name, record_id, operation FROM sync_changelog ORDER BY seq"));
        Assert.Equal(Rows, await SidecarDatabase.CountAsync(connection, "sync_bucket_edges"));
        Assert.Equal(Rows, loaded.Count);
        Assert.All(edges, e => Assert.Equal([e.BucketId], loaded[e.Record]));
    }

    [Fact]
    public async Task Rule_failures_keep_the_json_payload_or_null()
    {
        await using var connection = await OpenMigratedAsync("rule_failures");
        const string payload = """{"id": 7, "title": "Zoë 🚀", "tags": ["a", "b"], "owner": null, "price": 12.50}""";

        await ChangelogStore.WriteRuleFailuresAsync(
            connection,
            [
                new RuleFailure(Orders, "7", ChangeOperation.Update, "bucket function raised: division by zero", payload),
                new RuleFailure(Items, "8", ChangeOperation.Delete, "no owner", null),
            ],
            default);

        var rows = await SidecarDatabase.RowsAsync(
            connection,
            "SELECT table_name, record_id, operation, error_text, payload IS NULL, id > 0 AND created_at IS NOT NULL FROM sync_rule_failures ORDER BY record_id");
        Assert.Equal(
            [$"{Orders}|7|2|bucket function raised: division by zero|False|True", $"{Items}|8|3|no owner|True|True"],
            rows);
        var stored = (string)(await SidecarDatabase.ScalarAsync(connection, "SELECT payload::text FROM sync_rule_failures WHERE record_id = '7'"))!;
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(payload), JsonNode.Parse(stored)), stored);
        Assert.Equal("object", await SidecarDatabase.ScalarAsync(connection, "SELECT jsonb_typeof(payload) FROM sync_rule_failures WHERE record_id = '7'"));
    }

    [Fact]
    public async Task A_payload_that_is_not_json_fails_the_statement()
    {
        await using var connection = await OpenMigratedAsync("rule_failures_bad_json");

        var error = await Assert.ThrowsAsync<PostgresException>(
            () => ChangelogStore.WriteRuleFailuresAsync(connection, [new RuleFailure(Orders, "1", ChangeOperation.Insert, "x", "{not json")], default));

        Assert.Equal(PostgresErrorCodes.InvalidTextRepresentation, error.SqlState);
        Assert.Equal(0, await SidecarDatabase.CountAsync(connection, "sync_rule_failures"));
    }

    [Fact]
    public async Task Position_is_absent_then_saved_never_moves_back_and_survives_a_new_connection()
    {
        var connectionString = await SidecarDatabase.CreateAsync(postgres, "position");
        await using (var connection = await SidecarDatabase.OpenAsync(connectionString))
        {
            Assert.Null(await ChangelogStore.LoadPositionAsync(connection, Slot, default));

            await ChangelogStore.SavePositionAsync(connection, Slot, s_source, Lsn.Parse("16/B374D848"), default);
            Assert.Equal(Lsn.Parse("16/B374D848"), await ChangelogStore.LoadPositionAsync(connection, Slot, default));

            await ChangelogStore.SavePositionAsync(connection, Slot, s_source, Lsn.Parse("16/B374D847"), default);
            Assert.Equal(Lsn.Parse("16/B374D848"), await ChangelogStore.LoadPositionAsync(connection, Slot, default));

            await ChangelogStore.SavePositionAsync(connection, Slot, s_source, Lsn.Parse("17/0"), default);
            await ChangelogStore.SavePositionAsync(connection, "other_slot", s_source, Lsn.Parse("1/0"), default);
        }

        await using var reopened = await SidecarDatabase.OpenAsync(connectionString);
        Assert.Equal(Lsn.Parse("17/0"), await ChangelogStore.LoadPositionAsync(reopened, Slot, default));
        Assert.Equal(Lsn.Parse("1/0"), await ChangelogStore.LoadPositionAsync(reopened, "other_slot", default));
        Assert.Null(await ChangelogStore.LoadPositionAsync(reopened, "missing_slot", default));
        Assert.Equal(0x17_0000_0000L, await SidecarDatabase.ScalarAsync(reopened, "SELECT confirmed_lsn FROM sync_wal_position WHERE slot_name = $1", Slot));
    }

    [Fact]
    public async Task Position_is_saved_with_the_source_it_came_from_and_an_older_row_loads_unbound()
    {
        await using var connection = await OpenMigratedAsync("position_source");
        await SidecarDatabase.ExecuteAsync(connection, $"INSERT INTO sync_wal_position (slot_name, confirmed_lsn) VALUES ('{Slot}', 4096)");
        Assert.Equal(new PersistedPosition(new Lsn(4096), null), await ChangelogStore.LoadPersistedPositionAsync(connection, Slot, default));

        await ChangelogStore.SavePositionAsync(connection, Slot, s_source, Lsn.Parse("1/0"), default);
        Assert.Equal(new PersistedPosition(Lsn.Parse("1/0"), s_source), await ChangelogStore.LoadPersistedPositionAsync(connection, Slot, default));

        // The binding follows the source of the latest save, even when the position stays (it never moves back).
        var failedOver = s_source with { Timeline = 4, Database = "app_renamed" };
        await ChangelogStore.SavePositionAsync(connection, Slot, failedOver, Lsn.Parse("0/1"), default);
        Assert.Equal(new PersistedPosition(Lsn.Parse("1/0"), failedOver), await ChangelogStore.LoadPersistedPositionAsync(connection, Slot, default));
        Assert.Equal(unchecked((long)0x9A3C_0000_1234_5678), await SidecarDatabase.ScalarAsync(connection, "SELECT source_system_id FROM sync_wal_position WHERE slot_name = $1", Slot));
    }

    [Fact]
    public async Task Position_round_trips_up_to_the_largest_signed_value_and_refuses_beyond()
    {
        await using var connection = await OpenMigratedAsync("position_range");
        var largest = new Lsn(long.MaxValue);

        await ChangelogStore.SavePositionAsync(connection, Slot, s_source, largest, default);
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => ChangelogStore.SavePositionAsync(connection, Slot, s_source, new Lsn((ulong)long.MaxValue + 1), default));
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => ChangelogStore.SavePositionAsync(connection, Slot, s_source, Lsn.MaxValue, default));

        Assert.Equal(largest, await ChangelogStore.LoadPositionAsync(connection, Slot, default));
    }

    [Fact]
    public async Task Rolling_back_the_callers_transaction_leaves_nothing()
    {
        await using var connection = await OpenMigratedAsync("rollback");
        await ChangelogStore.ApplyEdgesAsync(connection, [(s_order1, "user:a"), (s_order2, "user:b")], [], default);
        await ChangelogStore.SavePositionAsync(connection, Slot, s_source, Lsn.Parse("1/0"), default);
        var edgesBefore = await SidecarDatabase.RowsAsync(connection, "SELECT table_name, record_id, bucket_id, updated_at FROM sync_bucket_edges ORDER BY 1, 2, 3");

        await using (var transaction = await connection.BeginTransactionAsync())
        {
            await WriteOneBatchAsync(connection);
            Assert.Equal(2, await SidecarDatabase.CountAsync(connection, "sync_changelog"));
            await transaction.RollbackAsync();
        }

        Assert.Equal(0, await SidecarDatabase.CountAsync(connection, "sync_changelog"));
        Assert.Equal(0, await SidecarDatabase.CountAsync(connection, "sync_rule_failures"));
        Assert.Equal(edgesBefore, await SidecarDatabase.RowsAsync(connection, "SELECT table_name, record_id, bucket_id, updated_at FROM sync_bucket_edges ORDER BY 1, 2, 3"));
        Assert.Equal(Lsn.Parse("1/0"), await ChangelogStore.LoadPositionAsync(connection, Slot, default));
    }

    [Fact]
    public async Task A_failure_inside_the_batch_leaves_nothing_once_rolled_back()
    {
        await using var connection = await OpenMigratedAsync("rollback_on_error");

        await using (var transaction = await connection.BeginTransactionAsync())
        {
            await WriteOneBatchAsync(connection);
            await Assert.ThrowsAsync<PostgresException>(
                () => ChangelogStore.WriteRuleFailuresAsync(connection, [new RuleFailure(Orders, "9", ChangeOperation.Insert, "x", "{not json")], default));
            await transaction.RollbackAsync();
        }

        Assert.Equal(0, await SidecarDatabase.CountAsync(connection, "sync_changelog"));
        Assert.Equal(0, await SidecarDatabase.CountAsync(connection, "sync_bucket_edges"));
        Assert.Equal(0, await SidecarDatabase.CountAsync(connection, "sync_rule_failures"));
        Assert.Null(await ChangelogStore.LoadPositionAsync(connection, Slot, default));
    }

    [Fact]
    public async Task Committing_the_callers_transaction_keeps_the_whole_batch()
    {
        await using var connection = await OpenMigratedAsync("commit");
        await ChangelogStore.ApplyEdgesAsync(connection, [(s_order1, "user:a"), (s_order2, "user:b")], [], default);

        await using (var transaction = await connection.BeginTransactionAsync())
        {
            await WriteOneBatchAsync(connection);
            await transaction.CommitAsync();
        }

        Assert.Equal(2, await SidecarDatabase.CountAsync(connection, "sync_changelog"));
        Assert.Equal(1, await SidecarDatabase.CountAsync(connection, "sync_rule_failures"));
        Assert.Equal(["public.orders|1|user:c", "public.orders|3|global"], await SidecarDatabase.RowsAsync(connection, "SELECT table_name, record_id, bucket_id FROM sync_bucket_edges ORDER BY 1, 2, 3"));
        Assert.Equal(Lsn.Parse("2/0"), await ChangelogStore.LoadPositionAsync(connection, Slot, default));
    }

    // What the writer stage does for one batch: every store call, inside the caller's transaction.
    private static async Task WriteOneBatchAsync(NpgsqlConnection connection)
    {
        await ChangelogStore.WriteChangelogAsync(connection, [new("user:c", Orders, "1", ChangeOperation.Insert), new("global", Orders, "3", ChangeOperation.Insert)], default);
        await ChangelogStore.ApplyEdgesAsync(connection, [(s_order1, "user:c"), (s_order3, "global")], [(s_order1, "user:a"), (s_order2, "user:b")], default);
        await ChangelogStore.WriteRuleFailuresAsync(connection, [new RuleFailure(Items, "1", ChangeOperation.Update, "rule failed", """{"id": 1}""")], default);
        await ChangelogStore.SavePositionAsync(connection, Slot, s_source, Lsn.Parse("2/0"), default);
    }

    private async Task<NpgsqlConnection> OpenMigratedAsync(string prefix)
        => await SidecarDatabase.OpenAsync(await SidecarDatabase.CreateAsync(postgres, prefix));
}
