using Synchro.Pipeline.Reading;
using Synchro.Pipeline.Tests.Infrastructure;

namespace Synchro.Pipeline.Tests.Reading;

[Collection(PostgresCollection.Name)]
public sealed class ChangelogResyncTests(PostgresServerFixture postgres)
{
    private static readonly string[] s_buckets = ["b1", "b2", "b3", "b4", "b5"];

    [Fact]
    public async Task A_horizon_above_the_cursor_asks_to_resync_exactly_those_buckets()
    {
        await using var db = await ReaderDatabase.CreateAsync(postgres, "resync_horizon");
        await db.ExecuteAsync("INSERT INTO sync_changelog (bucket_id, table_name, record_id, operation) SELECT 'b' || (1 + n % 5), 't', n::text, 1 FROM generate_series(1, 100) AS n");
        // b2 and b5 lost deletes after 20; b4's horizon is at the cursor, b3's below it.
        await db.ExecuteAsync("INSERT INTO sync_bucket_horizons (bucket_id, horizon_seq) VALUES ('b2', 50), ('b5', 21), ('b4', 20), ('b3', 7), ('other', 99)");
        var buckets = s_buckets.Select(b => new string(b.AsSpan())).ToArray();
        var cursor = ChangelogCursor.FromPosition(20);

        using var page = await db.Reader.ReadAsync(buckets, cursor, 100);

        Assert.Equal(ChangelogReadStatus.ResyncRequired, page.Status);
        Assert.Equal(ResyncReason.HorizonPassed, page.ResyncReason);
        Assert.Equal(["b2", "b5"], page.ResyncBuckets);
        Assert.Same(buckets[1], page.ResyncBuckets[0]);
        Assert.Equal(0, page.Count);
        Assert.Same(cursor, page.Next);
        Assert.False(page.HasMore);
    }

    [Fact]
    public async Task A_bucket_position_at_or_above_the_horizon_needs_no_resync()
    {
        await using var db = await ReaderDatabase.CreateAsync(postgres, "resync_bucket_position");
        await db.ExecuteAsync("INSERT INTO sync_changelog (bucket_id, table_name, record_id, operation) SELECT 'b' || (1 + n % 5), 't', n::text, 1 FROM generate_series(1, 100) AS n");
        await db.ExecuteAsync("INSERT INTO sync_bucket_horizons (bucket_id, horizon_seq) VALUES ('b2', 50), ('b5', 60)");
        // Resynced from snapshots: b2 at its horizon, b5 above it.
        var cursor = ChangelogCursor.FromPosition(20).WithBucketPositions(["b2"], 50).WithBucketPositions(["b5"], 70);
        var expected = await db.ChangesAfterAsync(s_buckets, cursor);

        var (read, end) = await ChangelogReaderTests.ReadToEndAsync(db.Reader, s_buckets, cursor, 7);

        Assert.Equal(expected, read);
        Assert.DoesNotContain(read, r => r.Contains("|b2|", StringComparison.Ordinal) && long.Parse(r.Split('|')[0], System.Globalization.CultureInfo.InvariantCulture) <= 50);
        Assert.Equal(100, end.Position);

        // One bucket position below its horizon is enough.
        using var page = await db.Reader.ReadAsync(s_buckets, ChangelogCursor.FromPosition(20).WithBucketPositions(["b5"], 55), 10);
        Assert.Equal(ChangelogReadStatus.ResyncRequired, page.Status);
        Assert.Equal(["b2", "b5"], page.ResyncBuckets);
    }

    [Fact]
    public async Task A_cursor_ahead_of_the_sequence_asks_to_resync_every_bucket()
    {
        await using var db = await ReaderDatabase.CreateAsync(postgres, "resync_ahead");
        var buckets = new[] { "b1", "b2" };
        // An empty changelog whose sequence was never used: any position above 0 is ahead.
        using (var empty = await db.Reader.ReadAsync(buckets, ChangelogCursor.FromPosition(5), 10))
        {
            Assert.Equal(ChangelogReadStatus.ResyncRequired, empty.Status);
            Assert.Equal(ResyncReason.CursorAhead, empty.ResyncReason);
        }
        using (var start = await db.Reader.ReadAsync(buckets, ChangelogCursor.Start, 10))
        {
            Assert.Equal(ChangelogReadStatus.Ok, start.Status);
            Assert.Equal(0, start.Next.Position);
        }

        await db.ExecuteAsync("INSERT INTO sync_changelog (bucket_id, table_name, record_id, operation) SELECT 'b1', 't', n::text, 1 FROM generate_series(1, 30) AS n");
        // Rows removed at the end do not lower the sequence: a cursor at 30 is not ahead.
        await db.ExecuteAsync("DELETE FROM sync_changelog WHERE seq > 25");
        using (var atEnd = await db.Reader.ReadAsync(buckets, ChangelogCursor.FromPosition(30), 10))
            Assert.Equal(ChangelogReadStatus.Ok, atEnd.Status);

        foreach (var cursor in new[] { ChangelogCursor.FromPosition(31), ChangelogCursor.FromPosition(10).WithBucketPositions(["b2"], 31) })
        {
            using var page = await db.Reader.ReadAsync(buckets, cursor, 10);
            Assert.Equal(ChangelogReadStatus.ResyncRequired, page.Status);
            Assert.Equal(ResyncReason.CursorAhead, page.ResyncReason);
            Assert.Equal(buckets, page.ResyncBuckets);
            Assert.Same(cursor, page.Next);
            Assert.Equal(0, page.Count);
        }
    }

    [Fact]
    public async Task Invalid_arguments_say_what_to_do()
    {
        await using var db = await ReaderDatabase.CreateAsync(postgres, "reader_arguments");
        var reader = new ChangelogReader(db.DataSource, new ChangelogReaderOptions { MaxBuckets = 3, MaxLimit = 50, MaxBucketIdBytes = 10 });

        var none = await Assert.ThrowsAsync<ArgumentException>(() => reader.ReadAsync([], ChangelogCursor.Start, 10));
        Assert.Contains("at least one", none.Message, StringComparison.Ordinal);
        var many = await Assert.ThrowsAsync<ArgumentException>(() => reader.ReadAsync(["a", "b", "c", "d"], ChangelogCursor.Start, 10));
        Assert.Contains("MaxBuckets", many.Message, StringComparison.Ordinal);
        var twice = await Assert.ThrowsAsync<ArgumentException>(() => reader.ReadSnapshotAsync(["a", "b", "a"], null, 10));
        Assert.Contains("'a' is given twice", twice.Message, StringComparison.Ordinal);
        var empty = await Assert.ThrowsAsync<ArgumentException>(() => reader.ReadAsync(["a", ""], ChangelogCursor.Start, 10));
        Assert.Contains("Bucket 1 is null or empty", empty.Message, StringComparison.Ordinal);
        var longer = await Assert.ThrowsAsync<ArgumentException>(() => reader.ReadAsync(["a", "abcdefghijk"], ChangelogCursor.Start, 10));
        Assert.Contains("more than the 10 the changelog takes", longer.Message, StringComparison.Ordinal);
        var limit = await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => reader.ReadAsync(["a"], ChangelogCursor.Start, 51));
        Assert.Contains("between 1 and 50", limit.Message, StringComparison.Ordinal);
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => reader.ReadSnapshotAsync(["a"], null, 0));
        var options = Assert.Throws<ArgumentException>(() => new ChangelogReader(db.DataSource, new ChangelogReaderOptions { MaxLimit = 0 }));
        Assert.Contains("ChangelogReaderOptions.MaxLimit is 0", options.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Missing_tables_say_to_migrate()
    {
        await using var db = await ReaderDatabase.CreateAsync(postgres, "reader_no_tables");
        var reader = new ChangelogReader(db.DataSource, new ChangelogReaderOptions { Schema = "elsewhere" });

        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => reader.ReadAsync(["a"], ChangelogCursor.Start, 10));

        Assert.Contains("not in schema \"elsewhere\"", error.Message, StringComparison.Ordinal);
        Assert.Contains("migrate", error.Message, StringComparison.Ordinal);
    }
}
