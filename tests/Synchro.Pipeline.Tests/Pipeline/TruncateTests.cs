using System.Diagnostics.Metrics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Synchro.Pipeline.Buckets;
using Synchro.Pipeline.Registry;
using Synchro.Pipeline.Tests.Diagnostics;
using Synchro.Pipeline.Tests.Infrastructure;

namespace Synchro.Pipeline.Tests.Pipeline;

/// <summary>TRUNCATE of registered tables: a delete in every bucket of every record the edges hold, in order with the changes around it.</summary>
[Collection(PostgresCollection.Name)]
[Trait(TestCategories.Name, TestCategories.VersionSensitive)]
public sealed class TruncateTests(PostgresServerFixture postgres)
{
    private const string O1 = "00000000-0000-0000-0000-000000000001";
    private const string O2 = "00000000-0000-0000-0000-000000000002";
    private const string O3 = "00000000-0000-0000-0000-000000000003";

    // The writer's event for an applied TRUNCATE.
    private const int TruncatedEvent = 3003;

    [Fact]
    public async Task Truncate_deletes_every_record_from_every_bucket_it_is_in_and_removes_its_edges()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "truncate_buckets");
        await harness.StartAsync(harness.Options(new TeamAssigner(O2)));

        await harness.ExecuteAsync($"""
            INSERT INTO orders (id, user_id) VALUES ('{O3}', 'alice'), ('{O2}', 'bob'), ('{O1}', 'alice');
            INSERT INTO order_lines VALUES (7, '{O1}', 1);
            INSERT INTO categories VALUES (1, 'books');
            """);
        await harness.WaitForChangelogAsync(6);

        await harness.ExecuteAsync("TRUNCATE orders, order_lines");
        await harness.ExecuteAsync("INSERT INTO categories VALUES (2, 'films')");

        var rows = await harness.WaitForChangelogAsync(12);
        Assert.Equal(
        [
            $"user:alice orders {O3} 1",
            $"user:bob orders {O2} 1",
            $"team:red orders {O2} 1",
            $"user:alice orders {O1} 1",
            "user:alice order_lines 7 1",
            "global categories 1 1",
            // Table by table in the message's order; within a table by record, then bucket.
            $"user:alice orders {O1} 3",
            $"team:red orders {O2} 3",
            $"user:bob orders {O2} 3",
            $"user:alice orders {O3} 3",
            "user:alice order_lines 7 3",
            "global categories 2 1",
        ], rows);
        Assert.Equal("categories 1 global,categories 2 global", await EdgesAsync(harness));
    }

    [Fact]
    public async Task Truncate_inside_a_transaction_comes_after_the_changes_before_it_and_before_those_after_it()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "truncate_order");
        await harness.StartAsync();
        await harness.ExecuteAsync($"INSERT INTO orders (id, user_id) VALUES ('{O1}', 'alice')");
        await harness.WaitForChangelogAsync(1);

        await harness.ExecuteAsync($"""
            BEGIN;
            INSERT INTO orders (id, user_id) VALUES ('{O2}', 'bob');
            UPDATE orders SET user_id = 'carol' WHERE id = '{O1}';
            TRUNCATE orders, order_lines;
            INSERT INTO orders (id, user_id) VALUES ('{O1}', 'dave');
            INSERT INTO orders (id, user_id) VALUES ('{O3}', 'erin');
            UPDATE orders SET total = 1 WHERE id = '{O3}';
            COMMIT;
            """);

        var rows = await harness.WaitForChangelogAsync(9);
        Assert.Equal(
        [
            $"user:alice orders {O1} 1",
            $"user:bob orders {O2} 1",
            $"user:carol orders {O1} 1",
            $"user:alice orders {O1} 3",
            // The TRUNCATE sees the edges the changes before it left, in the same transaction.
            $"user:carol orders {O1} 3",
            $"user:bob orders {O2} 3",
            // After it, the same id is new again: an insert, and nothing left in carol's bucket.
            $"user:dave orders {O1} 1",
            $"user:erin orders {O3} 1",
            $"user:erin orders {O3} 2",
        ], rows);
        Assert.Equal($"orders {O1} user:dave,orders {O3} user:erin", await EdgesAsync(harness));
        Assert.Equal(1L, await harness.ScalarAsync<long>("SELECT count(*) FROM sync_wal_position"));
    }

    [Fact]
    public async Task Truncate_in_a_transaction_larger_than_the_batch_limit_is_applied_once_between_its_chunks()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "truncate_chunks");
        await harness.StartAsync(harness.Options(maxBatchRows: 100));

        await harness.ExecuteAsync("""
            BEGIN;
            INSERT INTO categories SELECT g, 'c' FROM generate_series(1, 250) g;
            TRUNCATE categories;
            INSERT INTO categories SELECT g, 'c' FROM generate_series(1, 130) g;
            COMMIT;
            """);

        var expected = Enumerable.Range(1, 250).Select(i => $"global categories {i} 1")
            .Concat(Enumerable.Range(1, 250).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)).Order(StringComparer.Ordinal).Select(id => $"global categories {id} 3"))
            .Concat(Enumerable.Range(1, 130).Select(i => $"global categories {i} 1"))
            .ToList();
        await harness.WaitForChangelogAsync(expected.Count);
        await harness.WaitUntilCaughtUpAsync();
        Assert.Equal(expected, await harness.ChangelogAsync());
        Assert.Equal(130L, await harness.ScalarAsync<long>("SELECT count(*) FROM sync_bucket_edges"));
    }

    [Fact]
    public async Task Truncate_cascade_restart_identity_handles_every_registered_relation_and_reports_the_options()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "truncate_cascade");
        await harness.ExecuteAsync("""
            CREATE TABLE tickets (id serial PRIMARY KEY, order_id uuid NOT NULL REFERENCES orders (id));
            ALTER PUBLICATION synchro_pub ADD TABLE tickets;
            """);
        var logs = new RecordingLoggerFactory(LogLevel.Information);
        using var services = new ServiceCollection().AddMetrics().BuildServiceProvider();
        var meters = services.GetRequiredService<IMeterFactory>();
        using var recorder = new MeterRecorder(meters);
        var options = harness.Options();
        options.Tables = PipelineHarness.Registry().Add(new TableRegistration("tickets") { ParentTable = "orders", ParentForeignKeyColumn = "order_id", SoftDeleteColumn = null });
        options.LoggerFactory = logs;
        options.MeterFactory = meters;
        await harness.StartAsync(options);

        await harness.ExecuteAsync($"""
            INSERT INTO orders (id, user_id) VALUES ('{O1}', 'alice');
            INSERT INTO order_lines VALUES (7, '{O1}', 1);
            INSERT INTO tickets (order_id) VALUES ('{O1}');
            INSERT INTO unregistered VALUES (1, 'alice');
            """);
        await harness.WaitForChangelogAsync(3);

        // Named: orders and an unregistered table; cascaded: order_lines and tickets.
        await harness.ExecuteAsync("TRUNCATE orders, unregistered RESTART IDENTITY CASCADE");
        await harness.ExecuteAsync($"""
            INSERT INTO orders (id, user_id) VALUES ('{O2}', 'bob');
            INSERT INTO tickets (order_id) VALUES ('{O2}');
            """);

        var rows = await harness.WaitForChangelogAsync(8);
        Assert.Equal(
        [
            $"user:alice orders {O1} 1",
            "user:alice order_lines 7 1",
            "user:alice tickets 1 1",
            $"user:alice orders {O1} 3",
            "user:alice order_lines 7 3",
            "user:alice tickets 1 3",
            $"user:bob orders {O2} 1",
            // RESTART IDENTITY gave the id 1 again: a new record, not an update.
            "user:bob tickets 1 1",
        ], rows);

        var truncated = Assert.Single(logs.Entries, e => e.EventId.Id == TruncatedEvent);
        Assert.Equal(LogLevel.Information, truncated.Level);
        Assert.Equal("Synchro.Pipeline.Writer", truncated.Category);
        Assert.Equal(
            "TRUNCATE of public.orders, public.order_lines, public.tickets (options: CASCADE, RESTART IDENTITY): 3 delete row(s) written to the changelog, "
            + "one per bucket of each record, and the tables' bucket edges removed",
            truncated.Message);
        recorder.RecordObservableInstruments();
        Assert.Equal(3, recorder.Last("synchro.pipeline.truncates"));
        Assert.Equal(8, recorder.Last("synchro.pipeline.changelog.rows"));
    }

    [Fact]
    public async Task A_truncate_read_from_the_backlog_is_applied_once_across_restarts()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "truncate_restart");
        await harness.StartAsync();
        await harness.ExecuteAsync($"INSERT INTO orders (id, user_id) VALUES ('{O1}', 'alice')");
        await harness.WaitForChangelogAsync(1);
        await harness.StopAsync();

        await harness.ExecuteAsync("TRUNCATE orders, order_lines");
        await harness.ExecuteAsync($"INSERT INTO orders (id, user_id) VALUES ('{O2}', 'bob')");
        await harness.StartAsync();
        await harness.WaitForChangelogAsync(3);
        await harness.StopAsync();
        await harness.StartAsync();
        await harness.ExecuteAsync("INSERT INTO categories VALUES (1, 'books')");

        await harness.WaitForChangelogAsync(4);
        await harness.WaitUntilCaughtUpAsync();
        Assert.Equal(
        [
            $"user:alice orders {O1} 1",
            $"user:alice orders {O1} 3",
            $"user:bob orders {O2} 1",
            "global categories 1 1",
        ], await harness.ChangelogAsync());
    }

    [Fact]
    public async Task Truncate_of_an_unregistered_table_is_ignored()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "truncate_unregistered");
        var logs = new RecordingLoggerFactory(LogLevel.Information);
        var options = harness.Options();
        options.LoggerFactory = logs;
        await harness.StartAsync(options);

        await harness.ExecuteAsync("""
            BEGIN;
            INSERT INTO unregistered VALUES (1, 'alice');
            INSERT INTO categories VALUES (1, 'books');
            TRUNCATE unregistered;
            INSERT INTO categories VALUES (2, 'films');
            COMMIT;
            """);
        await harness.ExecuteAsync("TRUNCATE unregistered");
        await harness.ExecuteAsync("INSERT INTO categories VALUES (3, 'music')");

        await harness.WaitForChangelogAsync(3);
        await harness.WaitUntilCaughtUpAsync();
        Assert.Equal(["global categories 1 1", "global categories 2 1", "global categories 3 1"], await harness.ChangelogAsync());
        Assert.Equal("categories 1 global,categories 2 global,categories 3 global", await EdgesAsync(harness));
        Assert.DoesNotContain(logs.Entries, e => e.EventId.Id == TruncatedEvent);
    }

    private static Task<string> EdgesAsync(PipelineHarness harness) => harness.ScalarAsync<string>(
        "SELECT coalesce(string_agg(table_name || ' ' || record_id || ' ' || bucket_id, ',' ORDER BY table_name, record_id, bucket_id), '') FROM sync_bucket_edges");

    /// <summary>The default buckets, plus <c>team:red</c> for one order: a record in two buckets.</summary>
    private sealed class TeamAssigner(string teamOrder) : IBucketAssigner
    {
        private readonly DefaultBucketAssigner _default = new();

        public async Task AssignAsync(BucketAssignmentBatch batch, CancellationToken cancellationToken)
        {
            await _default.AssignAsync(batch, cancellationToken);
            foreach (var change in batch.Changes.Where(c => c.Table.Name == "orders" && c.RecordId == teamOrder))
                change.Buckets.Add("team:red");
        }
    }
}
