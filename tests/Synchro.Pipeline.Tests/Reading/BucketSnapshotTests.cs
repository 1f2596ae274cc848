using Npgsql;
using Synchro.Pipeline.Reading;
using Synchro.Pipeline.Tests.Infrastructure;

namespace Synchro.Pipeline.Tests.Reading;

[Collection(PostgresCollection.Name)]
public sealed class BucketSnapshotTests(PostgresServerFixture postgres)
{
    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(1000)]
    public async Task Paging_returns_exactly_the_members_of_the_buckets(int limit)
    {
        await using var db = await ReaderDatabase.CreateAsync(postgres, "snapshot_members_" + limit);
        // 30 buckets, members in three tables; bucket b3 is empty, and others hold members of buckets not asked for.
        await db.ExecuteAsync("""
            INSERT INTO sync_bucket_edges (table_name, record_id, bucket_id)
            SELECT 't' || (n % 3), n::text || CASE WHEN n % 5 = 0 THEN 'é' ELSE '' END, 'b' || (n % 40)
            FROM generate_series(1, 3000) AS n WHERE n % 40 <> 3;
            INSERT INTO sync_changelog (bucket_id, table_name, record_id, operation) SELECT 'x', 't', n::text, 1 FROM generate_series(1, 77) AS n;
            """);
        var buckets = Enumerable.Range(0, 30).Select(i => "b" + i).Reverse().ToArray();
        var expected = await db.MembersAsync(buckets);

        var (members, pages, cursor) = await ReadSnapshotAsync(db.Reader, buckets, limit, null);

        Assert.Equal(expected, members.Order(StringComparer.Ordinal));
        Assert.Equal(members.Count, members.Distinct().Count());
        Assert.Equal(Math.Max(1, (expected.Count + limit - 1) / limit), pages);
        Assert.Equal(77, cursor.Position);
        Assert.Empty(cursor.BucketPositions);
    }

    [Fact]
    public async Task The_position_is_at_least_the_buckets_horizons_and_a_token_needs_the_same_buckets()
    {
        await using var db = await ReaderDatabase.CreateAsync(postgres, "snapshot_horizon");
        await db.ExecuteAsync("""
            INSERT INTO sync_changelog (bucket_id, table_name, record_id, operation) SELECT 'b1', 't', n::text, 1 FROM generate_series(1, 40) AS n;
            DELETE FROM sync_changelog WHERE seq > 30;
            INSERT INTO sync_bucket_horizons (bucket_id, horizon_seq) VALUES ('b1', 35), ('b9', 39);
            INSERT INTO sync_bucket_edges (table_name, record_id, bucket_id) SELECT 't', n::text, 'b1' FROM generate_series(1, 5) AS n;
            """);

        var first = await db.Reader.ReadSnapshotAsync(["b1", "b2"], null, 2);

        Assert.Equal(35, first.Position);
        Assert.False(first.IsLast);
        Assert.Null(first.Cursor);
        var error = await Assert.ThrowsAsync<ArgumentException>(() => db.Reader.ReadSnapshotAsync(["b1"], first.Next, 2));
        Assert.Contains("same buckets", error.Message, StringComparison.Ordinal);
        // The position does not move on later pages, and reading changes from it needs no resync.
        var (_, _, cursor) = await ReadSnapshotAsync(db.Reader, ["b2", "b1"], 2, first.Next);
        Assert.Equal(35, cursor.Position);
        using var page = await db.Reader.ReadAsync(["b1", "b2"], cursor, 10);
        Assert.Equal(ChangelogReadStatus.Ok, page.Status);
    }

    [Fact]
    public async Task A_client_that_loads_a_snapshot_while_the_changelog_is_written_ends_with_the_members()
    {
        await using var db = await ReaderDatabase.CreateAsync(postgres, "snapshot_concurrent");
        await db.ExecuteAsync("""
            INSERT INTO sync_bucket_edges (table_name, record_id, bucket_id) SELECT 't' || (n % 2), n::text, 'b' || (n % 12) FROM generate_series(1, 2000) AS n;
            INSERT INTO sync_changelog (bucket_id, table_name, record_id, operation) SELECT 'b' || (n % 12), 't' || (n % 2), n::text, 1 FROM generate_series(1, 2000) AS n;
            """);
        var buckets = Enumerable.Range(0, 10).Select(i => "b" + i).ToArray();
        var random = new Random(15);
        var state = new HashSet<string>(StringComparer.Ordinal);
        BucketSnapshotToken? token = null;
        ChangelogCursor? cursor = null;
        var pages = 0;
        while (cursor is null)
        {
            var page = await db.Reader.ReadSnapshotAsync(buckets, token is null ? null : BucketSnapshotToken.Parse(token.ToString()), 97);
            pages++;
            foreach (var member in page.Members)
                Assert.True(state.Add($"{member.BucketId}|{member.TableName}|{member.RecordId}"), $"{member} came twice");
            token = page.Next;
            cursor = page.Cursor;
            // Between pages, the writer moves members in, out and between buckets, each edge change with its changelog row.
            await WriteAsync(db, random, 20);
        }
        Assert.True(pages > 15, $"{pages} pages");
        await WriteAsync(db, random, 20);

        var (changes, _) = await ChangelogReaderTests.ReadToEndAsync(db.Reader, buckets, cursor, 50);
        foreach (var change in changes)
        {
            var parts = change.Split('|');
            var key = $"{parts[1]}|{parts[2]}|{parts[3]}";
            if (parts[4] == "3")
                state.Remove(key);
            else
                state.Add(key);
        }

        Assert.Equal(await db.MembersAsync(buckets), state.Order(StringComparer.Ordinal));
    }

    /// <summary>Transactions as the writer commits them: edges and their changelog rows together.</summary>
    private static async Task WriteAsync(ReaderDatabase db, Random random, int transactions)
    {
        await using var connection = await db.DataSource.OpenConnectionAsync();
        for (var i = 0; i < transactions; i++)
        {
            await using var transaction = await connection.BeginTransactionAsync();
            var table = "t" + random.Next(2);
            var record = random.Next(1, 2600).ToString(System.Globalization.CultureInfo.InvariantCulture);
            var bucket = "b" + random.Next(12);
            // The record leaves its buckets (delete rows), then maybe enters another (insert row), or is just updated.
            var sql = random.Next(3) switch
            {
                0 => """
                    WITH gone AS (DELETE FROM sync_bucket_edges WHERE table_name = $1 AND record_id = $2 RETURNING bucket_id)
                    INSERT INTO sync_changelog (bucket_id, table_name, record_id, operation) SELECT bucket_id, $1, $2, 3 FROM gone
                    """,
                1 => """
                    WITH gone AS (DELETE FROM sync_bucket_edges WHERE table_name = $1 AND record_id = $2 AND bucket_id <> $3 RETURNING bucket_id),
                         added AS (INSERT INTO sync_bucket_edges (table_name, record_id, bucket_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING bucket_id)
                    INSERT INTO sync_changelog (bucket_id, table_name, record_id, operation)
                    SELECT bucket_id, $1, $2, 3 FROM gone UNION ALL SELECT $3, $1, $2, 1
                    """,
                _ => """
                    INSERT INTO sync_changelog (bucket_id, table_name, record_id, operation)
                    SELECT bucket_id, $1, $2, 2 FROM sync_bucket_edges WHERE table_name = $1 AND record_id = $2
                    """,
            };
            await using var command = new NpgsqlCommand(sql, connection, transaction);
            command.Parameters.Add(new NpgsqlParameter { Value = table });
            command.Parameters.Add(new NpgsqlParameter { Value = record });
            if (sql.Contains("$3", StringComparison.Ordinal))
                command.Parameters.Add(new NpgsqlParameter { Value = bucket });
            await command.ExecuteNonQueryAsync();
            await transaction.CommitAsync();
        }
    }

    internal static async Task<(List<string> Members, int Pages, ChangelogCursor Cursor)> ReadSnapshotAsync(ChangelogReader reader, string[] buckets, int limit, BucketSnapshotToken? token)
    {
        var members = new List<string>();
        long? position = null;
        for (var pages = 1; ; pages++)
        {
            var page = await reader.ReadSnapshotAsync(buckets, token, limit);
            Assert.True(page.Members.Count <= limit);
            Assert.Equal(position ??= page.Position, page.Position);
            foreach (var member in page.Members)
            {
                Assert.Contains(member.BucketId, buckets);
                Assert.Same(buckets.First(b => b == member.BucketId), member.BucketId);
                members.Add($"{member.BucketId}|{member.TableName}|{member.RecordId}");
            }
            if (page.IsLast)
            {
                Assert.Null(page.Next);
                Assert.NotNull(page.Cursor);
                Assert.Equal(page.Position, page.Cursor.Position);
                return (members, pages, page.Cursor);
            }
            Assert.Equal(limit, page.Members.Count);
            Assert.Null(page.Cursor);
            token = BucketSnapshotToken.Parse(page.Next!.ToString());
        }
    }
}
