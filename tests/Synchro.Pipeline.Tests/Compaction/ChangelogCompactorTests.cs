using Npgsql;
using Synchro.Pipeline.Compaction;
using Synchro.Pipeline.Tests.Changelog;
using Synchro.Pipeline.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Synchro.Pipeline.Tests.Compaction;

/// <summary>
/// <see cref="ChangelogCompactor"/> against a brute-force answer in SQL: after random inserts, updates, deletes and moves
/// across buckets, exactly the latest row of every (bucket, table, record) is left, but for latest deletes older than the
/// retention, and each bucket's horizon is the largest seq of those it removed.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class ChangelogCompactorTests(PostgresServerFixture postgres, ITestOutputHelper output)
{
    // The latest row of every key, and which of them compaction must purge (a delete at or below the purge mark).
    private const string ExpectedSql = """
        CREATE TABLE latest AS SELECT DISTINCT ON (bucket_id, table_name, record_id) seq, bucket_id, operation
            FROM sync_changelog ORDER BY bucket_id, table_name, record_id, seq DESC;
        CREATE TABLE expected_kept AS SELECT seq FROM latest WHERE NOT (operation = 3 AND seq <= {0});
        CREATE TABLE expected_horizons AS SELECT bucket_id, max(seq) AS horizon_seq FROM latest WHERE operation = 3 AND seq <= {0} GROUP BY bucket_id;
        """;

    private static ChangelogCompactor Compactor(NpgsqlDataSource dataSource, int chunkRows = 7, int maxTracked = 1_000_000)
        => new(dataSource, new ChangelogCompactionOptions { ChunkRows = chunkRows, MaxTrackedRecords = maxTracked });

    private static async Task<(string ConnectionString, SimulatedWriter Writer, long Aged)> WorkloadAsync(PostgresServerFixture postgres, string name, int seed)
    {
        var connectionString = await SidecarDatabase.CreateAsync(postgres, name);
        var writer = new SimulatedWriter(connectionString, new Random(seed), records: 60, buckets: 8);
        for (var i = 0; i < 40; i++)
            await writer.WriteAsync(25);
        // The first two thirds are past the retention.
        var aged = await Sql.ScalarAsync<long>(connectionString, "SELECT max(seq) * 2 / 3 FROM sync_changelog");
        await SimulatedWriter.AgeAsync(connectionString, aged, TimeSpan.FromDays(8));
        return (connectionString, writer, aged);
    }

    [Fact]
    public async Task Leaves_exactly_the_latest_row_of_every_record_but_old_deletes_and_raises_the_horizons_to_them()
    {
        var (connectionString, writer, aged) = await WorkloadAsync(postgres, "compact_exact", seed: 1501);
        await Sql.ExecuteAsync(connectionString, string.Format(System.Globalization.CultureInfo.InvariantCulture, ExpectedSql, aged));
        var before = await Sql.ScalarAsync<long>(connectionString, "SELECT count(*) FROM sync_changelog");
        var highWater = await Sql.ScalarAsync<long>(connectionString, "SELECT max(seq) FROM sync_changelog");
        await using var dataSource = NpgsqlDataSource.Create(connectionString);

        var result = await Compactor(dataSource).CompactAsync();

        output.WriteLine($"{before} rows; removed {result.SupersededRowsRemoved} superseded, {result.DeletesRemoved} deletes; {result.BucketsVisited} buckets");
        Assert.Equal(highWater, result.CompactedThroughSeq);
        Assert.Equal(aged, result.PurgedThroughSeq);
        Assert.Equal(8, result.BucketsVisited);
        Assert.Equal(0, result.BucketsLeftPartial);
        Assert.Equal(await Sql.RowsAsync(connectionString, "SELECT seq::text FROM expected_kept ORDER BY seq"),
            await Sql.RowsAsync(connectionString, "SELECT seq::text FROM sync_changelog ORDER BY seq"));
        Assert.Equal(await Sql.RowsAsync(connectionString, "SELECT bucket_id || '=' || horizon_seq FROM expected_horizons ORDER BY bucket_id"),
            await Sql.RowsAsync(connectionString, "SELECT bucket_id || '=' || horizon_seq FROM sync_bucket_horizons ORDER BY bucket_id"));
        Assert.True(result.DeletesRemoved > 0 && result.SupersededRowsRemoved > 0, "the workload had nothing of one kind to remove");
        Assert.Equal(before - result.RowsRemoved, await Sql.ScalarAsync<long>(connectionString, "SELECT count(*) FROM sync_changelog"));
        Assert.Equal(result.HorizonsRaised, await Sql.ScalarAsync<long>(connectionString, "SELECT count(*) FROM expected_horizons"));
        Assert.Equal($"{highWater}|{aged}", (await SidecarDatabase.RowsAsync(await SidecarDatabase.OpenAsync(connectionString),
            "SELECT compacted_through_seq, purged_through_seq FROM sync_compaction_state")).Single());

        // The next run visits only the buckets written since, and finds again exactly the latest rows.
        await writer.WriteAsync(3);
        var written = await Sql.ScalarAsync<long>(connectionString, $"SELECT count(DISTINCT bucket_id) FROM sync_changelog WHERE seq > {highWater}");
        var again = await Compactor(dataSource).CompactAsync();
        Assert.Equal(written, again.BucketsVisited);
        Assert.Equal(0, await Sql.ScalarAsync<long>(connectionString,
            "SELECT count(*) FROM (SELECT 1 FROM sync_changelog GROUP BY bucket_id, table_name, record_id HAVING count(*) > 1) d"));
    }

    [Fact]
    public async Task A_bucket_with_more_records_than_it_tracks_is_left_partly_compacted_and_keeps_every_latest_row()
    {
        var (connectionString, _, aged) = await WorkloadAsync(postgres, "compact_partial", seed: 1502);
        await Sql.ExecuteAsync(connectionString, string.Format(System.Globalization.CultureInfo.InvariantCulture, ExpectedSql, aged));
        await Sql.ExecuteAsync(connectionString, "CREATE TABLE rows_before AS SELECT * FROM sync_changelog");
        await using var dataSource = NpgsqlDataSource.Create(connectionString);

        var result = await Compactor(dataSource, chunkRows: 5, maxTracked: 4).CompactAsync();

        Assert.Equal(8, result.BucketsLeftPartial);
        Assert.True(result.RowsRemoved > 0);
        // Every latest row is still there, unless it was an old delete whose removal raised the horizon past it.
        Assert.Equal(0L, await Sql.ScalarAsync<long>(connectionString, """
            SELECT count(*) FROM latest l WHERE NOT EXISTS (SELECT 1 FROM sync_changelog c WHERE c.seq = l.seq)
              AND NOT (l.operation = 3 AND l.seq <= (SELECT horizon_seq FROM sync_bucket_horizons h WHERE h.bucket_id = l.bucket_id))
            """));
        // Every row removed was superseded, or an old delete at or below its bucket's horizon.
        Assert.Equal(0L, await Sql.ScalarAsync<long>(connectionString, $"""
            SELECT count(*) FROM rows_before b WHERE NOT EXISTS (SELECT 1 FROM sync_changelog c WHERE c.seq = b.seq)
              AND NOT EXISTS (SELECT 1 FROM rows_before l WHERE l.bucket_id = b.bucket_id AND l.table_name = b.table_name AND l.record_id = b.record_id AND l.seq > b.seq)
              AND NOT (b.operation = 3 AND b.seq <= {aged} AND b.seq <= (SELECT horizon_seq FROM sync_bucket_horizons h WHERE h.bucket_id = b.bucket_id))
            """));

        // A full run with room for every record finishes the job.
        var full = await new ChangelogCompactor(dataSource, new ChangelogCompactionOptions { Full = true, ChunkRows = 5 }).CompactAsync();
        Assert.Equal(0, full.BucketsLeftPartial);
        Assert.Equal(await Sql.RowsAsync(connectionString, "SELECT seq::text FROM expected_kept ORDER BY seq"),
            await Sql.RowsAsync(connectionString, "SELECT seq::text FROM sync_changelog ORDER BY seq"));
    }

    [Fact]
    public async Task A_second_compaction_of_the_same_changelog_does_nothing_and_says_so()
    {
        var connectionString = await SidecarDatabase.CreateAsync(postgres, "compact_lock");
        await Sql.ExecuteAsync(connectionString, "INSERT INTO sync_changelog (bucket_id, table_name, record_id, operation) VALUES ('a', 't', '1', 1), ('a', 't', '1', 2)");
        await using var holder = await SidecarDatabase.OpenAsync(connectionString);
        await SidecarDatabase.ExecuteAsync(holder, $"SELECT pg_advisory_lock({ChangelogCompactor.LockClass}, hashtext('public'))");
        await using var dataSource = NpgsqlDataSource.Create(connectionString);
        var logs = new Pipeline.RecordingLoggerFactory(Microsoft.Extensions.Logging.LogLevel.Information);

        var skipped = await new ChangelogCompactor(dataSource, new ChangelogCompactionOptions(), logs).CompactAsync();

        Assert.True(skipped.AnotherRunning);
        Assert.Equal(2L, await Sql.ScalarAsync<long>(connectionString, "SELECT count(*) FROM sync_changelog"));
        Assert.Contains(logs.Entries, e => e.EventId.Id == 7051);

        await SidecarDatabase.ExecuteAsync(holder, $"SELECT pg_advisory_unlock({ChangelogCompactor.LockClass}, hashtext('public'))");
        var ran = await new ChangelogCompactor(dataSource, new ChangelogCompactionOptions()).CompactAsync();
        Assert.False(ran.AnotherRunning);
        Assert.Equal(1, ran.SupersededRowsRemoved);
        // The lock was given back: a third run takes it again.
        Assert.False((await new ChangelogCompactor(dataSource, new ChangelogCompactionOptions()).CompactAsync()).AnotherRunning);
    }
}
