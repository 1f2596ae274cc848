using Npgsql;
using Synchro.Pipeline.Compaction;
using Synchro.Pipeline.Reading;
using Synchro.Pipeline.Tests.Changelog;
using Synchro.Pipeline.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Synchro.Pipeline.Tests.Compaction;

/// <summary>
/// The exactness property of compaction: with random workloads, a client that reads incrementally with random pauses across
/// compactions (random retention cut-offs), and resyncs from a bucket snapshot when told, always ends with the same live
/// records per bucket as the log said (the edges, which every changelog row follows).
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class CompactionExactnessTests(PostgresServerFixture postgres, ITestOutputHelper output)
{
    [Theory]
    [InlineData(15_001)]
    [InlineData(15_002)]
    [InlineData(15_003)]
    [InlineData(15_004)]
    [InlineData(15_005)]
    [InlineData(15_006)]
    [InlineData(15_007)]
    [InlineData(15_008)]
    public async Task A_client_reading_across_compactions_ends_with_the_live_records_of_the_uncompacted_log(int seed)
    {
        var random = new Random(seed);
        var connectionString = await SidecarDatabase.CreateAsync(postgres, $"compact_exact_{seed}");
        var writer = new SimulatedWriter(connectionString, random, records: 30, buckets: 4);
        await using var dataSource = NpgsqlDataSource.Create(connectionString);
        var reader = new ChangelogReader(dataSource);
        // What compaction removes is kept, so that a failure can be explained from the output.
        await Sql.ExecuteAsync(connectionString, """
            CREATE TABLE removed (seq bigint, bucket_id text, table_name text, record_id text, operation smallint, at timestamptz DEFAULT clock_timestamp());
            CREATE FUNCTION keep_removed() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN INSERT INTO removed VALUES (OLD.seq, OLD.bucket_id, OLD.table_name, OLD.record_id, OLD.operation); RETURN OLD; END $$;
            CREATE TRIGGER keep_removed AFTER DELETE ON sync_changelog FOR EACH ROW EXECUTE FUNCTION keep_removed();
            """);
        var client = new Client(reader, writer.AllBuckets, random);
        await client.ResyncAsync(writer.AllBuckets);
        var (compactions, resyncs) = (0, 0);
        try
        {
            for (var step = 0; step < 60; step++)
            {
                switch (random.Next(4))
                {
                    case 0:
                        await writer.WriteAsync(random.Next(1, 15));
                        break;
                    case 1:
                        // A random cut-off: rows up to a random seq become older than the retention.
                        var top = await Sql.ScalarAsync<long>(connectionString, "SELECT COALESCE(max(seq), 0) FROM sync_changelog");
                        if (top > 0)
                            await SimulatedWriter.AgeAsync(connectionString, random.NextInt64(1, top + 1), TimeSpan.FromDays(8));
                        await new ChangelogCompactor(dataSource, new ChangelogCompactionOptions { ChunkRows = random.Next(1, 10), MaxTrackedRecords = random.Next(3, 100) }).CompactAsync();
                        compactions++;
                        break;
                    default:
                        resyncs += await client.ReadAsync(pages: random.Next(1, 4));
                        break;
                }
            }
            await writer.WriteAsync(5);
            await new ChangelogCompactor(dataSource, new ChangelogCompactionOptions { DeleteRetention = TimeSpan.Zero, ChunkRows = 3 }).CompactAsync();
            resyncs += await client.ReadAsync(pages: int.MaxValue);

            var truth = writer.Members();
            foreach (var bucket in writer.AllBuckets)
            {
                var expected = truth.TryGetValue(bucket, out var members) ? members.Order().ToList() : [];
                Assert.Equal(expected, client.State[bucket].Order().ToList());
            }
            output.WriteLine($"seed {seed}: {compactions} compactions, {resyncs} bucket resyncs");
        }
        catch
        {
            output.WriteLine($"failed with seed {seed} ({compactions} compactions, {resyncs} resyncs)");
            foreach (var line in client.Log)
                output.WriteLine(line);
            foreach (var line in await Sql.RowsAsync(connectionString, "SELECT concat_ws(' ', 'kept', seq, bucket_id, table_name, record_id, operation) FROM sync_changelog UNION ALL SELECT concat_ws(' ', 'removed', seq, bucket_id, table_name, record_id, operation, at) FROM removed UNION ALL SELECT concat_ws(' ', 'horizon', bucket_id, horizon_seq, updated_at) FROM sync_bucket_horizons"))
                output.WriteLine(line);
            throw;
        }
    }

    /// <summary>An offline-first client: the records of each of its buckets and its cursor.</summary>
    private sealed class Client(ChangelogReader reader, IReadOnlyList<string> buckets, Random random)
    {
        public Dictionary<string, HashSet<(string, string)>> State { get; } = buckets.ToDictionary(b => b, _ => new HashSet<(string, string)>(), StringComparer.Ordinal);

        private ChangelogCursor _cursor = ChangelogCursor.Start;

        public List<string> Log { get; } = [];

        /// <summary>Reads up to <paramref name="pages"/> pages (until caught up); returns the buckets it had to resync.</summary>
        public async Task<int> ReadAsync(int pages)
        {
            var resynced = 0;
            for (var i = 0; i < pages; i++)
            {
                using var page = await reader.ReadAsync(buckets, _cursor, random.Next(1, 12));
                Log.Add($"read at {_cursor} [{string.Join(",", _cursor.BucketPositions.Select(p => p.Key + "=" + p.Value))}]: {page.Status} {page.ResyncReason} {string.Join(",", page.ResyncBuckets)} rows {string.Join(" ", Enumerable.Range(0, page.Count).Select(i => page[i].Seq + ":" + page[i].BucketId + ":" + page[i].TableName + ":" + page[i].RecordId + ":" + (int)page[i].Operation))} next {page.Next} more {page.HasMore}");
                if (page.Status == ChangelogReadStatus.ResyncRequired)
                {
                    var stale = page.ResyncReason == ResyncReason.CursorAhead ? buckets : page.ResyncBuckets;
                    await ResyncAsync(stale);
                    resynced += stale.Count;
                    continue;
                }
                foreach (var entry in page)
                {
                    var key = (entry.TableName, entry.RecordId);
                    if (entry.Operation == ChangeOperation.Delete)
                        State[entry.BucketId].Remove(key);
                    else
                        State[entry.BucketId].Add(key);
                }
                _cursor = page.Next;
                if (!page.HasMore && page.Count == 0)
                    return resynced;
            }
            return resynced;
        }

        /// <summary>Replaces <paramref name="stale"/> buckets' records with a snapshot, paged, and moves their cursors to it.</summary>
        public async Task ResyncAsync(IReadOnlyList<string> stale)
        {
            var members = stale.ToDictionary(b => b, _ => new HashSet<(string, string)>(), StringComparer.Ordinal);
            BucketSnapshotToken? after = null;
            while (true)
            {
                var page = await reader.ReadSnapshotAsync(stale, after, random.Next(1, 10));
                foreach (var member in page.Members)
                    members[member.BucketId].Add((member.TableName, member.RecordId));
                Log.Add($"snapshot {string.Join(",", stale)} at {page.Position}: {string.Join(" ", page.Members.Select(m => m.BucketId + ":" + m.TableName + ":" + m.RecordId))} last {page.IsLast}");
                if (page.IsLast)
                {
                    foreach (var (bucket, set) in members)
                        State[bucket] = set;
                    _cursor = _cursor.WithBucketPositions(stale, page.Cursor!.Position);
                    return;
                }
                after = page.Next;
            }
        }
    }
}
