using Microsoft.Extensions.Logging;
using NpgsqlTypes;
using Synchro.Pipeline.Registry;
using Synchro.Pipeline.Tests.Infrastructure;

namespace Synchro.Pipeline.Tests.Pipeline;

/// <summary>DDL between DML: each new Relation message takes effect from that point; a registered column that goes stops the pipeline cleanly.</summary>
[Collection(PostgresCollection.Name)]
public sealed class SchemaChangeTests(PostgresServerFixture postgres)
{
    private const string A = "00000000-0000-0000-0000-00000000000a";
    private const string B = "00000000-0000-0000-0000-00000000000b";
    private const string C = "00000000-0000-0000-0000-00000000000c";
    private const string D = "00000000-0000-0000-0000-00000000000d";

    [Fact]
    public async Task Columns_added_dropped_renamed_and_retyped_take_effect_from_that_point()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "schema_changes");
        await harness.ExecuteAsync("""
            CREATE TABLE items (junk int, id int PRIMARY KEY, note text, user_id text, extra int, deleted_at timestamptz);
            ALTER PUBLICATION synchro_pub ADD TABLE items;
            """);
        var options = harness.Options();
        options.Tables = new TableRegistry().Add(new TableRegistration("items") { OwnerColumn = "user_id" });
        await harness.StartAsync(options);

        await harness.ExecuteAsync("INSERT INTO items VALUES (100, 1, 'n', 'alice', 5)");
        // A column before the registered ones goes: every registered column moves one place to the left.
        await harness.ExecuteAsync("ALTER TABLE items DROP COLUMN junk");
        await harness.ExecuteAsync("INSERT INTO items (id, note, user_id) VALUES (2, 'n', 'bob')");
        await harness.ExecuteAsync("""
            BEGIN;
            ALTER TABLE items ADD COLUMN added text DEFAULT 'x';
            INSERT INTO items (id, user_id, added) VALUES (3, 'carol', 'y');
            ALTER TABLE items ALTER COLUMN extra TYPE bigint;
            UPDATE items SET user_id = 'dave', extra = 9000000000 WHERE id = 1;
            ALTER TABLE items RENAME COLUMN note TO remark;
            ALTER TABLE items DROP COLUMN extra;
            INSERT INTO items (id, remark, user_id) VALUES (4, 'r', 'erin');
            ALTER TABLE items ALTER COLUMN user_id TYPE varchar(20);
            UPDATE items SET remark = 's' WHERE id = 3;
            COMMIT;
            """);
        await harness.ExecuteAsync("UPDATE items SET deleted_at = now() WHERE id = 2");

        await harness.WaitForChangelogAsync(8);
        await harness.WaitUntilCaughtUpAsync();
        Assert.Equal(
        [
            "user:alice items 1 1",
            "user:bob items 2 1",
            "user:carol items 3 1",
            "user:dave items 1 1",
            "user:alice items 1 3",
            "user:erin items 4 1",
            "user:carol items 3 2",
            "user:bob items 2 3",
        ], await harness.ChangelogAsync());
    }

    [Fact]
    public async Task A_renamed_owner_column_stops_the_pipeline_before_its_transaction_and_the_fixed_registration_delivers_it()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "schema_missing_owner");
        var logs = new RecordingLoggerFactory();
        var options = harness.Options();
        // Long enough that B, the rename and the failing transaction meet in one decoder batch.
        options.BatchLinger = TimeSpan.FromSeconds(1);
        options.LoggerFactory = logs;
        await harness.StartAsync(options);
        await harness.ExecuteAsync($"INSERT INTO orders (id, user_id) VALUES ('{A}', 'alice')");
        await harness.WaitForChangelogAsync(1);

        // A whole transaction of the old schema, then the rename and a transaction under the new one, whose first
        // change (categories) precedes the failing row.
        await harness.ExecuteAsync($"INSERT INTO orders (id, user_id) VALUES ('{B}', 'bob')");
        await harness.ExecuteAsync("ALTER TABLE orders RENAME COLUMN user_id TO owner_id");
        // The insert position: the test server does not wait for WAL writes, so the write position can lag.
        var beforeFailing = await harness.ScalarAsync<NpgsqlLogSequenceNumber>("SELECT pg_current_wal_insert_lsn()");
        await harness.ExecuteAsync($"""
            BEGIN;
            INSERT INTO categories VALUES (9, 'nine');
            INSERT INTO orders (id, owner_id) VALUES ('{C}', 'carol');
            COMMIT;
            """);
        await harness.ExecuteAsync($"INSERT INTO orders (id, owner_id) VALUES ('{D}', 'dave')");

        var error = await Assert.ThrowsAsync<WalPipelineException>(() => harness.Running.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Contains("Registered column 'user_id' of table public.orders is not in the replication stream", error.Message, StringComparison.Ordinal);
        Assert.Contains("now: id, owner_id, total, deleted_at", error.Message, StringComparison.Ordinal);
        Assert.Equal(WalPipelineState.Failed, harness.Pipeline!.GetStatus().State);
        Assert.Contains(logs.Entries, e => e is { EventId.Id: 1005, Level: LogLevel.Critical } && e.Message.Contains("'user_id'", StringComparison.Ordinal));

        // Everything before the failing transaction is committed (B shared the decoder's batch with it), nothing of it.
        Assert.Equal([$"user:alice orders {A} 1", $"user:bob orders {B} 1"], await harness.ChangelogAsync());
        var position = await harness.ScalarAsync<long>("SELECT confirmed_lsn FROM sync_wal_position");
        Assert.True((ulong)position <= (ulong)beforeFailing, $"the position {position:X} passed the failing transaction (starts after {beforeFailing})");
        Assert.True(await harness.ScalarAsync<bool>($"SELECT confirmed_flush_lsn <= '{beforeFailing}'::pg_lsn FROM pg_replication_slots WHERE slot_name = '{harness.Slot}'"));

        options = harness.Options();
        options.Tables = new TableRegistry()
            .Add(new TableRegistration("orders") { OwnerColumn = "owner_id" })
            .Add(new TableRegistration("categories") { GlobalWhenBucketNull = true });
        await harness.StartAsync(options);
        await harness.WaitForChangelogAsync(5);
        await harness.WaitUntilCaughtUpAsync();
        Assert.Equal(
        [
            $"user:alice orders {A} 1",
            $"user:bob orders {B} 1",
            "global categories 9 1",
            $"user:carol orders {C} 1",
            $"user:dave orders {D} 1",
        ], await harness.ChangelogAsync());
    }

    [Fact]
    public async Task A_renamed_id_column_stops_the_pipeline_with_table_and_column_and_the_fixed_registration_delivers_it()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "schema_missing_id");
        await harness.StartAsync();
        await harness.ExecuteAsync("INSERT INTO categories VALUES (1, 'a')");
        await harness.WaitForChangelogAsync(1);

        await harness.ExecuteAsync("ALTER TABLE categories RENAME COLUMN id TO key");
        await harness.ExecuteAsync("INSERT INTO categories VALUES (2, 'b')");
        var error = await Assert.ThrowsAsync<WalPipelineException>(() => harness.Running.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Contains("Registered column 'id' of table public.categories", error.Message, StringComparison.Ordinal);
        Assert.Equal(["global categories 1 1"], await harness.ChangelogAsync());

        var options = harness.Options();
        options.Tables = new TableRegistry().Add(new TableRegistration("categories") { IdColumn = "key", GlobalWhenBucketNull = true });
        await harness.StartAsync(options);
        await harness.ExecuteAsync("UPDATE categories SET name = 'c' WHERE key = 1");
        await harness.WaitForChangelogAsync(3);
        await harness.WaitUntilCaughtUpAsync();
        Assert.Equal(["global categories 1 1", "global categories 2 1", "global categories 1 2"], await harness.ChangelogAsync());
    }
}
