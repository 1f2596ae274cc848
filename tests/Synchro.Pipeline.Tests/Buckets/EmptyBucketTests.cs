using Synchro.Pipeline.Buckets;
using Synchro.Pipeline.Registry;
using Synchro.Pipeline.Tests.Infrastructure;
using Synchro.Pipeline.Tests.Pipeline;

namespace Synchro.Pipeline.Tests.Buckets;

/// <summary>
/// A bucket rule that answers NULL or an empty string: the reference drops empty bucket ids, so such a change is in no
/// bucket (a record that was in one leaves it) — no rule failure, and the pipeline goes on.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class EmptyBucketTests(PostgresServerFixture postgres)
{
    [Fact]
    public async Task A_function_returning_null_or_empty_bucket_ids_puts_the_record_in_no_bucket()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "empty_function");
        await harness.ExecuteAsync("""
            CREATE TABLE items (id int PRIMARY KEY, owner text);
            ALTER PUBLICATION synchro_pub ADD TABLE items;
            CREATE FUNCTION item_buckets(table_name text, operation text, new_row jsonb, old_row jsonb) RETURNS SETOF text LANGUAGE sql AS $$
              SELECT unnest(CASE new_row->>'owner'
                WHEN 'none' THEN ARRAY[NULL]::text[]
                WHEN 'empty' THEN ARRAY['']
                WHEN 'mixed' THEN ARRAY[NULL, '', 'user:mixed', '']
                WHEN 'nothing' THEN ARRAY[]::text[]
                ELSE ARRAY['user:' || (new_row->>'owner')] END)
            $$;
            """);
        var options = harness.Options();
        options.Tables = PipelineHarness.Registry().Add(new TableRegistration("items") { BucketFunction = "item_buckets", SoftDeleteColumn = null });
        await harness.StartAsync(options);

        await harness.ExecuteAsync("""
            BEGIN;
            INSERT INTO items VALUES (1, 'alice'), (2, 'none'), (3, 'empty'), (4, 'mixed'), (5, 'nothing'), (6, 'bob');
            COMMIT;
            UPDATE items SET owner = 'none' WHERE id = 1;
            UPDATE items SET owner = 'empty' WHERE id = 4;
            INSERT INTO items VALUES (7, 'carol');
            """);

        Assert.Equal(
        [
            "user:alice items 1 1", "user:mixed items 4 1", "user:bob items 6 1",
            "user:alice items 1 3",
            "user:mixed items 4 3",
            "user:carol items 7 1",
        ], await harness.WaitForChangelogAsync(6));
        Assert.Empty(await OverlongIdTests.FailuresAsync(harness));
        Assert.Equal("6 user:bob,7 user:carol", await harness.ScalarAsync<string>("SELECT string_agg(record_id || ' ' || bucket_id, ',' ORDER BY record_id) FROM sync_bucket_edges"));
    }

    [Fact]
    public async Task An_assigner_or_owner_column_giving_null_or_empty_bucket_ids_puts_the_record_in_no_bucket()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "empty_assigner");
        // Categories' buckets come from their name: 'none' gives a null id, 'empty' an empty one, 'both' both and a real one;
        // orders are left to the default assigner (its owner column).
        var byName = PerChangeBucketAssigner.Create((change, _) => ValueTask.FromResult<IEnumerable<string>?>(change.Table.Name != "categories" ? null : change.GetValue("name") switch
        {
            "none" => [null!],
            "empty" => [""],
            "both" => [null!, "", "team:both"],
            var name => ["team:" + name],
        }));
        var options = harness.Options(new FirstThen(byName, new DefaultBucketAssigner()));
        options.Tables = new TableRegistry()
            .Add(new TableRegistration("orders") { OwnerColumn = "user_id" })
            .Add(new TableRegistration("categories") { GlobalWhenBucketNull = true, DecodeAllColumns = true });
        await harness.StartAsync(options);

        await harness.ExecuteAsync("""
            BEGIN;
            INSERT INTO categories VALUES (1, 'books'), (2, 'none'), (3, 'empty'), (4, 'both');
            INSERT INTO orders (id, user_id) VALUES ('00000000-0000-0000-0000-000000000001', ''), ('00000000-0000-0000-0000-000000000002', 'alice');
            COMMIT;
            UPDATE categories SET name = 'empty' WHERE id = 1;
            UPDATE orders SET user_id = '' WHERE id = '00000000-0000-0000-0000-000000000002';
            INSERT INTO categories VALUES (5, 'games');
            """);

        Assert.Equal(
        [
            "team:books categories 1 1", "team:both categories 4 1", "user:alice orders 00000000-0000-0000-0000-000000000002 1",
            "team:books categories 1 3",
            "user:alice orders 00000000-0000-0000-0000-000000000002 3",
            "team:games categories 5 1",
        ], await harness.WaitForChangelogAsync(6));
        Assert.Empty(await OverlongIdTests.FailuresAsync(harness));
    }

    private sealed class FirstThen(IBucketAssigner first, IBucketAssigner then) : IBucketAssigner
    {
        public async Task AssignAsync(BucketAssignmentBatch batch, CancellationToken cancellationToken)
        {
            await first.AssignAsync(batch, cancellationToken);
            await then.AssignAsync(batch, cancellationToken);
        }
    }
}
