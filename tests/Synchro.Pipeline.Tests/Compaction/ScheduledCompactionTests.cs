using Synchro.Pipeline.Compaction;
using Synchro.Pipeline.Tests.Infrastructure;
using Synchro.Pipeline.Tests.Pipeline;
using Xunit.Abstractions;

namespace Synchro.Pipeline.Tests.Compaction;

/// <summary>
/// Compaction on a schedule inside a running pipeline while pgbench writes: it only ever removes rows a later row of the
/// same record in the same bucket supersedes (a trigger keeps what it removed), the changelog ends with the latest row of
/// every record, true to the edges, and compaction stops with the pipeline.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class ScheduledCompactionTests(PostgresServerFixture postgres, ITestOutputHelper output)
{
    // Updates of 40 orders moving among 5 owners, a few deletes and re-inserts.
    private const string Script = """
        \set id random(1, 40)
        \set owner random(1, 5)
        \set kind random(1, 10)
        BEGIN;
        INSERT INTO orders (id, user_id) VALUES (('00000000-0000-0000-0000-' || lpad(:id::text, 12, '0'))::uuid, 'u' || :owner)
            ON CONFLICT (id) DO UPDATE SET user_id = EXCLUDED.user_id, total = orders.total + 1;
        COMMIT;
        \if :kind = 1
        DELETE FROM orders WHERE id = ('00000000-0000-0000-0000-' || lpad(:id::text, 12, '0'))::uuid;
        \endif
        """;

    [Fact]
    public async Task Runs_beside_the_writer_removes_only_superseded_rows_and_stops_with_the_pipeline()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "compact_scheduled");
        var options = harness.Options();
        options.CompactionInterval = TimeSpan.FromMilliseconds(200);
        await harness.StartAsync(options);
        await harness.ExecuteAsync("""
            CREATE TABLE removed (seq bigint, bucket_id text, table_name text, record_id text, operation smallint);
            CREATE FUNCTION keep_removed() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN INSERT INTO removed VALUES (OLD.seq, OLD.bucket_id, OLD.table_name, OLD.record_id, OLD.operation); RETURN OLD; END $$;
            CREATE TRIGGER keep_removed AFTER DELETE ON sync_changelog FOR EACH ROW EXECUTE FUNCTION keep_removed();
            """);
        var script = Path.Combine(Path.GetTempPath(), $"compact_scheduled_{Guid.NewGuid():N}.sql");
        await File.WriteAllTextAsync(script, Script);
        try
        {
            using var pgbench = Pgbench.Start(postgres.Server, harness.ConnectionString, script, "-c", "4", "-j", "2", "-T", "8");
            var errors = pgbench.StandardError.ReadToEndAsync();
            await pgbench.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(2));
            Assert.True(pgbench.ExitCode == 0, await errors);
        }
        finally
        {
            File.Delete(script);
        }
        await harness.WaitUntilCaughtUpAsync();
        // A run that started after the writer caught up covers everything: wait for one to complete past the last seq.
        var last = await harness.ScalarAsync<long>("SELECT max(seq) FROM sync_changelog");
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (await harness.ScalarAsync<long>("SELECT COALESCE((SELECT compacted_through_seq FROM sync_compaction_state), 0)") < last)
        {
            Assert.True(DateTime.UtcNow < deadline, "no compaction run covered the changelog within 60 s");
            await Task.Delay(100);
        }
        await harness.StopAsync();

        var removed = await harness.ScalarAsync<long>("SELECT count(*) FROM removed");
        output.WriteLine($"{removed} rows removed, {await harness.ScalarAsync<long>("SELECT count(*) FROM sync_changelog")} left");
        Assert.True(removed > 0);
        // Every removed row had a later row of its record in its bucket (kept, or itself removed later): never a latest one.
        Assert.Equal(0L, await harness.ScalarAsync<long>("""
            SELECT count(*) FROM removed r WHERE NOT EXISTS (
                SELECT 1 FROM (SELECT seq, bucket_id, table_name, record_id FROM sync_changelog UNION ALL SELECT seq, bucket_id, table_name, record_id FROM removed) l
                WHERE l.bucket_id = r.bucket_id AND l.table_name = r.table_name AND l.record_id = r.record_id AND l.seq > r.seq)
            """));
        // One row per record and bucket is left, and it agrees with the edges: a member's is an insert or update, any other's a delete.
        Assert.Equal(0L, await harness.ScalarAsync<long>("SELECT count(*) FROM (SELECT 1 FROM sync_changelog GROUP BY bucket_id, table_name, record_id HAVING count(*) > 1) d"));
        Assert.Equal(0L, await harness.ScalarAsync<long>("""
            SELECT count(*) FROM sync_changelog c
            WHERE (c.operation = 3) = EXISTS (SELECT 1 FROM sync_bucket_edges e WHERE e.bucket_id = c.bucket_id AND e.table_name = c.table_name AND e.record_id = c.record_id)
            """));
        Assert.Equal(0L, await harness.ScalarAsync<long>("""
            SELECT count(*) FROM sync_bucket_edges e WHERE NOT EXISTS (SELECT 1 FROM sync_changelog c WHERE c.bucket_id = e.bucket_id AND c.table_name = e.table_name AND c.record_id = e.record_id)
            """));
        // Stopped with the pipeline: no session holds the compaction lock.
        Assert.Equal(0L, await harness.ScalarAsync<long>($"SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = {ChangelogCompactor.LockClass}"));
    }
}
