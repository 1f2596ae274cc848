using Synchro.Pipeline.Reading;
using Synchro.Pipeline.Tests.Infrastructure;

namespace Synchro.Pipeline.Tests.Reading;

[Collection(PostgresCollection.Name)]
public sealed class ChangelogReaderTests(PostgresServerFixture postgres)
{
    private const int AllBuckets = 400;

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Paging_to_the_end_returns_every_row_after_the_cursor_in_seq_order(bool skewed)
    {
        await using var db = await ReaderDatabase.CreateAsync(postgres, skewed ? "reader_skewed" : "reader_even");
        // 20,000 rows over 400 buckets (80 % in b0 when skewed), three tables, some non-ASCII and empty record ids, and
        // gaps in seq where rows were removed.
        await db.ExecuteAsync($"""
            SELECT setseed(0.15);
            INSERT INTO sync_changelog (bucket_id, table_name, record_id, operation)
            SELECT CASE WHEN {(skewed ? "true" : "false")} AND random() < 0.8 THEN 'b0' ELSE 'b' || floor(random() * {AllBuckets})::int END,
                   't' || floor(random() * 3)::int,
                   CASE WHEN n % 97 = 0 THEN '' ELSE 'r' || floor(random() * 5000)::int || CASE WHEN n % 7 = 0 THEN 'é✓🚀' ELSE '' END END,
                   1 + floor(random() * 3)::int
            FROM generate_series(1, 20000) AS n;
            DELETE FROM sync_changelog WHERE seq % 11 = 0;
            """);
        var high = await db.ScalarAsync("SELECT max(seq) FROM sync_changelog");
        var random = new Random(15);
        foreach (var size in new[] { 1, 10, 300 })
        {
            foreach (var limit in new[] { 1, 7, 100, 1000 })
            {
                if (limit == 1 && size > 10)
                    continue;
                var buckets = Enumerable.Range(0, AllBuckets).OrderBy(_ => random.Next()).Take(size).Select(i => "b" + i).ToList();
                if (skewed && !buckets.Contains("b0"))
                    buckets[0] = "b0";
                // Small pages start near the end, so the test reads a few thousand rows, not all of them one by one.
                var start = ChangelogCursor.FromPosition(limit < 100 ? high - 1_500 : random.Next(0, 5_000));
                if (size > 1)
                    start = start.WithBucketPositions(buckets.Take(size / 2), start.Position + random.Next(1, limit < 100 ? 1_000 : 8_000));
                var expected = await db.ChangesAfterAsync(buckets, start);

                var (read, end) = await ReadToEndAsync(db.Reader, buckets, start, limit);

                Assert.True(expected.SequenceEqual(read), $"{size} buckets, limit {limit}: expected {expected.Count} rows, read {read.Count}; first difference at {FirstDifference(expected, read)}");
                Assert.Equal(high, end.Position);
                Assert.Empty(end.BucketPositions);
            }
        }
    }

    [Fact]
    public async Task Entries_carry_the_callers_bucket_instances_and_cached_table_names()
    {
        await using var db = await ReaderDatabase.CreateAsync(postgres, "reader_instances");
        await db.ExecuteAsync("INSERT INTO sync_changelog (bucket_id, table_name, record_id, operation) SELECT 'b' || (n % 3), 'public.orders', n::text, 1 FROM generate_series(1, 30) AS n");
        var buckets = new[] { new string("b0".AsSpan()), new string("b1".AsSpan()), new string("b2".AsSpan()) };

        using var page = await db.Reader.ReadAsync(buckets, ChangelogCursor.Start, 100);

        Assert.Equal(30, page.Count);
        string? table = null;
        foreach (var entry in page)
        {
            Assert.Same(buckets[(int)(entry.Seq % 3)], entry.BucketId);
            Assert.Same(table ??= entry.TableName, entry.TableName);
            Assert.Equal(entry.Seq.ToString(System.Globalization.CultureInfo.InvariantCulture), entry.RecordIdSpan.ToString());
        }
        Assert.False(page.HasMore);
        page.Dispose();
        Assert.Throws<ObjectDisposedException>(() => page[0].RecordIdSpan.Length);
    }

    [Fact]
    public async Task A_caught_up_cursor_moves_to_the_high_water_mark_and_never_backwards()
    {
        await using var db = await ReaderDatabase.CreateAsync(postgres, "reader_idle");
        await db.ExecuteAsync("INSERT INTO sync_changelog (bucket_id, table_name, record_id, operation) SELECT 'other', 't', n::text, 1 FROM generate_series(1, 50) AS n");

        using (var page = await db.Reader.ReadAsync(["mine"], ChangelogCursor.Start, 10))
        {
            Assert.Equal(0, page.Count);
            Assert.False(page.HasMore);
            Assert.Equal(50, page.Next.Position);
        }
        // Compaction can remove the newest rows; the cursor stays where it was.
        await db.ExecuteAsync("DELETE FROM sync_changelog WHERE seq > 40");
        using (var page = await db.Reader.ReadAsync(["mine"], ChangelogCursor.FromPosition(50), 10))
        {
            Assert.Equal(ChangelogReadStatus.Ok, page.Status);
            Assert.Equal(50, page.Next.Position);
        }
    }

    [Fact]
    public async Task A_full_page_stops_at_its_last_row_and_says_there_is_more()
    {
        await using var db = await ReaderDatabase.CreateAsync(postgres, "reader_full");
        await db.ExecuteAsync("INSERT INTO sync_changelog (bucket_id, table_name, record_id, operation) SELECT 'b' || (n % 2), 't', n::text, 1 FROM generate_series(1, 10) AS n");

        using var page = await db.Reader.ReadAsync(["b0", "b1"], ChangelogCursor.Start, 4);

        Assert.Equal([1L, 2, 3, 4], Enumerable.Range(0, page.Count).Select(i => page[i].Seq));
        Assert.True(page.HasMore);
        Assert.Equal(4, page.Next.Position);
    }

    internal static async Task<(List<string> Rows, ChangelogCursor End)> ReadToEndAsync(ChangelogReader reader, IReadOnlyList<string> buckets, ChangelogCursor cursor, int limit)
    {
        var rows = new List<string>();
        for (var reads = 0; ; reads++)
        {
            Assert.True(reads < 100_000, "the reader does not make progress");
            using var page = await reader.ReadAsync(buckets, cursor, limit);
            Assert.Equal(ChangelogReadStatus.Ok, page.Status);
            Assert.True(page.Count <= limit);
            Assert.True(page.Next.Position >= cursor.Position, "the cursor moved backwards");
            foreach (var entry in page)
            {
                Assert.True(entry.Seq > cursor.PositionOf(entry.BucketId), $"row {entry.Seq} of {entry.BucketId} is not after the cursor");
                Assert.True(entry.Seq <= page.Next.Position || entry.Seq <= page.Next.PositionOf(entry.BucketId), $"row {entry.Seq} is after the next cursor");
                rows.Add(ReaderDatabase.Render(entry));
            }
            Assert.True(page.Count > 0 || !page.HasMore || page.Next.Position > cursor.Position, "a page said there is more but moved nowhere");
            cursor = page.Next;
            if (!page.HasMore)
                return (rows, cursor);
        }
    }

    private static string FirstDifference(List<string> expected, List<string> actual)
    {
        for (var i = 0; i < Math.Max(expected.Count, actual.Count); i++)
        {
            var e = i < expected.Count ? expected[i] : "(none)";
            var a = i < actual.Count ? actual[i] : "(none)";
            if (e != a)
                return $"#{i}: expected {e}, read {a}";
        }
        return "(none)";
    }
}
