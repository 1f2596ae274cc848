using Synchro.Pipeline.Registry;
using Synchro.Pipeline.Tests.Infrastructure;
using static Synchro.Pipeline.Tests.Pipeline.StreamedTransactionTests;

namespace Synchro.Pipeline.Tests.Pipeline;

/// <summary>
/// What a streamed transaction carries besides plain row changes goes through its spill file too: a TRUNCATE in the
/// middle (written between the changes before and after it), the whole rows a SQL bucket function needs, and the
/// origin filter. The database's <c>logical_decoding_work_mem</c> is 64 kB, so 5,000 rows stream.
/// </summary>
[Collection(PostgresCollection.Name)]
[Trait(TestCategories.Name, TestCategories.VersionSensitive)]
public sealed class StreamedTransactionFeatureTests(PostgresServerFixture postgres)
{
    [Fact]
    public async Task A_truncate_inside_a_streamed_transaction_deletes_in_order_between_the_changes_around_it()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "stream_truncate");
        await LowerDecodingMemoryAsync(harness);
        await harness.StartAsync(Options(harness));
        var statistics = harness.Pipeline!.SpillStatistics;
        await harness.ExecuteAsync(Insert(900_001, 900_003));
        await harness.WaitForChangelogAsync(3);

        await using (var connection = await OpenAsync(harness))
        {
            await ExecuteAsync(connection, "BEGIN");
            await ExecuteAsync(connection, Insert(1, 5_000));
            await WaitAsync(() => statistics.BytesSpilled > 0, "the transaction to stream");
            await ExecuteAsync(connection, "TRUNCATE orders CASCADE");
            await ExecuteAsync(connection, Insert(10_001, 10_001));
            await ExecuteAsync(connection, "COMMIT");
        }

        var rows = await harness.WaitForChangelogAsync(3 + 5_000 + 5_003 + 1);
        var truncated = Enumerable.Range(1, 5_000).Concat(Enumerable.Range(900_001, 3))
            .Select(g => (Id: Uuid(g), Owner: g % 10))
            .OrderBy(r => r.Id, StringComparer.Ordinal)
            .Select(r => $"user:u{r.Owner} orders {r.Id} 3");
        List<string> expected = [.. Rows(900_001, 900_003), .. Rows(1, 5_000), .. truncated, .. Rows(10_001, 10_001)];
        Assert.Equal(expected, rows);
        Assert.Equal(1L, await harness.ScalarAsync<long>("SELECT count(*) FROM sync_bucket_edges"));
        Assert.True(statistics.ReplayedTransactions >= 1);
    }

    [Fact]
    public async Task A_streamed_transaction_gives_a_sql_bucket_function_its_whole_typed_rows()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "stream_function");
        await LowerDecodingMemoryAsync(harness);
        await harness.ExecuteAsync("""
            CREATE FUNCTION order_buckets(table_name text, operation text, new_row jsonb, old_row jsonb) RETURNS SETOF text
            LANGUAGE sql AS $$ SELECT 'total:' || (new_row->'total')::text || ':' || jsonb_typeof(new_row->'total') $$;
            """);
        var options = Options(harness);
        options.Tables = new TableRegistry().Add(new TableRegistration("orders") { BucketFunction = "order_buckets" });
        await harness.StartAsync(options);
        var statistics = harness.Pipeline!.SpillStatistics;

        await using (var connection = await OpenAsync(harness))
        {
            await ExecuteAsync(connection, "BEGIN");
            await ExecuteAsync(connection, "INSERT INTO orders (id, user_id, total) SELECT lpad(to_hex(g), 32, '0')::uuid, 'u', g FROM generate_series(1, 5000) g ORDER BY g");
            await WaitAsync(() => statistics.BytesSpilled > 0, "the transaction to stream");
            await ExecuteAsync(connection, "COMMIT");
        }

        var rows = await harness.WaitForChangelogAsync(5_000);
        Assert.Equal(Enumerable.Range(1, 5_000).Select(g => $"total:{g}:number orders {Uuid(g)} 1"), rows);
        Assert.True(statistics.ReplayedTransactions >= 1);
        Assert.Equal(0L, await harness.ScalarAsync<long>("SELECT count(*) FROM sync_rule_failures"));
    }

    [Fact]
    public async Task A_streamed_transaction_of_a_skipped_origin_leaves_nothing()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "stream_origin");
        await LowerDecodingMemoryAsync(harness);
        var options = Options(harness);
        options.SkipOrigins.Add("streamed_sync");
        await harness.StartAsync(options);
        var statistics = harness.Pipeline!.SpillStatistics;

        await using (var connection = await OpenAsync(harness))
        {
            await ExecuteAsync(connection, "SELECT pg_replication_origin_create('streamed_sync')");
            await ExecuteAsync(connection, "SELECT pg_replication_origin_session_setup('streamed_sync')");
            await ExecuteAsync(connection, "BEGIN");
            await ExecuteAsync(connection, Insert(1, 5_000));
            await ExecuteAsync(connection, "COMMIT");
            // The session origin outlives the pooled connection's reset: clear it, or the marker below would carry it.
            await ExecuteAsync(connection, "SELECT pg_replication_origin_session_reset()");
        }
        await harness.ExecuteAsync(Insert(900_001, 900_001));

        Assert.Equal(Rows(900_001, 900_001), await harness.WaitForChangelogAsync(1));
        await harness.WaitUntilCaughtUpAsync();
        Assert.Equal(Rows(900_001, 900_001), await harness.ChangelogAsync());
        Assert.Equal(0, statistics.ReplayedTransactions);
        Assert.Equal(1L, await harness.ScalarAsync<long>("SELECT count(*) FROM sync_bucket_edges"));
    }
}
