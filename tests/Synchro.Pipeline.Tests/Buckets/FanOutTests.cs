using Synchro.Pipeline.Registry;
using Synchro.Pipeline.Tests.Infrastructure;
using Synchro.Pipeline.Tests.Pipeline;

namespace Synchro.Pipeline.Tests.Buckets;

/// <summary>
/// A SQL function's fan-out is limited while its rows stream in: a change past <see cref="WalPipelineOptions.MaxBucketsPerChange"/>
/// distinct buckets keeps none of them and fails with the fan-out reason, however many the function returns; repeats do
/// not count toward the limit.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class FanOutTests(PostgresServerFixture postgres)
{
    [Fact]
    public async Task A_function_fanning_out_past_the_limit_fails_its_change_and_repeated_ids_count_once()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "fan_out");
        await harness.ExecuteAsync("""
            CREATE TABLE posts (id int PRIMARY KEY, fans int NOT NULL, repeats int NOT NULL DEFAULT 0);
            ALTER PUBLICATION synchro_pub ADD TABLE posts;
            CREATE FUNCTION post_buckets(table_name text, operation text, new_row jsonb, old_row jsonb) RETURNS SETOF text LANGUAGE sql AS $$
              SELECT 'fan:' || g FROM generate_series(1, (new_row->>'fans')::int) g
              UNION ALL SELECT 'fan:1' FROM generate_series(1, (new_row->>'repeats')::int)
            $$;
            """);
        var options = harness.Options();
        options.MaxBucketsPerChange = 100;
        options.Tables = PipelineHarness.Registry().Add(new TableRegistration("posts") { BucketFunction = "post_buckets", SoftDeleteColumn = null });
        await harness.StartAsync(options);

        // Post 2 returns 300,000 bucket ids; post 3 returns 100 distinct ones among 50,100.
        await harness.ExecuteAsync("""
            BEGIN;
            INSERT INTO posts VALUES (1, 3, 0), (2, 300000, 0), (3, 100, 50000), (4, 2, 0);
            COMMIT;
            INSERT INTO posts VALUES (5, 101);
            INSERT INTO posts VALUES (6, 1);
            """);

        var rows = await harness.WaitForChangelogAsync(106);
        Assert.Equal(
            [.. Enumerable.Range(1, 3).Select(i => $"fan:{i} posts 1 1"), .. Enumerable.Range(1, 100).Select(i => $"fan:{i} posts 3 1"), "fan:1 posts 4 1", "fan:2 posts 4 1", "fan:1 posts 6 1"],
            rows);
        Assert.Equal(
        [
            "posts 2 1 bucket fan-out 300000 exceeds the limit of 100 buckets per change (MaxBucketsPerChange)",
            "posts 5 1 bucket fan-out 101 exceeds the limit of 100 buckets per change (MaxBucketsPerChange)",
        ], await OverlongIdTests.FailuresAsync(harness));
    }
}
