// Run (needs the PostgreSQL server binaries, as the tests do; GlobalSetup starts a throwaway server):
//   cd bench/Synchro.Pipeline.Benchmarks && dotnet run -c Release -- --filter '*SavepointCostBenchmarks*'
using System.Globalization;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Engines;
using Npgsql;
using Synchro.Pipeline.Changelog;
using Synchro.Pipeline.LocalPostgres;

namespace Synchro.Pipeline.Benchmarks;

/// <summary>
/// What the backstop of invariant 7 costs when nothing is refused: a batch's writes (changelog rows and as many new edges,
/// both by binary COPY, then the commit) in a transaction (baseline); the same under the savepoint the writer takes per
/// batch, sent with the first write and committed with the batch, as for a batch that ends its source transaction; and
/// with the savepoint released before the commit (one round trip more), as for a chunk of a larger one — for a small
/// batch and a full one.
/// </summary>
/// <remarks>
/// Setup prints the WAL each way writes per batch (<c>pg_current_wal_insert_lsn</c> before and after, averaged over 20
/// batches), and the median time of each way over 100 batches written taking turns, which a loaded machine skews less
/// than separate runs.
/// </remarks>
[MemoryDiagnoser]
[SimpleJob(RunStrategy.Monitoring, launchCount: 1, warmupCount: 3, iterationCount: 30)]
public class SavepointCostBenchmarks
{
    private readonly List<(RecordKey Record, string BucketId)> _edges = [];
    private readonly List<ChangelogRow> _changelog = [];
    private LocalPostgresServer? _server;
    private NpgsqlConnection? _connection;

    [Params(10, 10_000)]
    public int Rows { get; set; }

    [GlobalSetup]
    public async Task SetupAsync()
    {
        for (var i = 0; i < Rows; i++)
        {
            var record = new RecordKey("orders", $"00000000-0000-4000-8000-{i:x12}");
            var bucket = "user:" + (i % 1_000).ToString("D4", CultureInfo.InvariantCulture);
            _edges.Add((record, bucket));
            _changelog.Add(new ChangelogRow(bucket, record.TableName, record.RecordId, ChangeOperation.Insert));
        }
        _server = await LocalPostgresServer.StartAsync();
        _connection = new NpgsqlConnection(await _server.CreateDatabaseAsync("savepoint_bench"));
        await _connection.OpenAsync();
        await ChangelogSchema.EnsureAsync(_connection);
        Console.WriteLine($"// Server: PostgreSQL {_server.ServerVersion} on port {_server.Port}");
        foreach (var way in s_ways)
        {
            long wal = 0;
            for (var i = 0; i < 20; i++)
            {
                Truncate();
                var before = await WalAsync();
                await WriteAsync(way);
                wal += await WalAsync() - before;
            }
            Console.WriteLine($"// WAL per batch of {Rows:N0} {way}: {wal / 20:N0} bytes");
        }
        var times = s_ways.ToDictionary(w => w, _ => new List<double>());
        for (var i = 0; i < 100; i++)
        {
            foreach (var way in s_ways.Skip(i % 3).Concat(s_ways.Take(i % 3)))
            {
                Truncate();
                var started = System.Diagnostics.Stopwatch.GetTimestamp();
                await WriteAsync(way);
                times[way].Add(System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalMilliseconds);
            }
        }
        Console.WriteLine($"// Taking turns, median of 100 batches of {Rows:N0}: " + string.Join(", ", s_ways.Select(w => $"{Median(times[w]):F3} ms {w}")));
    }

    private static readonly string[] s_ways = ["in a transaction", "under a savepoint", "under a released savepoint"];

    private static double Median(List<double> values)
    {
        values.Sort();
        return (values[(values.Count - 1) / 2] + values[values.Count / 2]) / 2;
    }

    [IterationSetup]
    public void Truncate()
    {
        using var command = new NpgsqlCommand("TRUNCATE sync_changelog, sync_bucket_edges", _connection);
        command.ExecuteNonQuery();
    }

    [Benchmark(Baseline = true)]
    public Task InTransaction() => WriteAsync(s_ways[0]);

    [Benchmark]
    public Task UnderSavepoint() => WriteAsync(s_ways[1]);

    [Benchmark]
    public Task UnderReleasedSavepoint() => WriteAsync(s_ways[2]);

    [GlobalCleanup]
    public async Task CleanupAsync()
    {
        if (_connection is not null)
            await _connection.DisposeAsync();
        if (_server is not null)
            await _server.DisposeAsync();
    }

    private async Task WriteAsync(string way)
    {
        await using var transaction = await _connection!.BeginTransactionAsync();
        if (way != s_ways[0])
            ChangelogStore.StartPart(transaction);
        await ChangelogStore.WriteChangelogAsync(_connection, _changelog, default);
        await ChangelogStore.ApplyEdgesAsync(_connection, _edges, [], default);
        if (way == s_ways[2])
            await ChangelogStore.EndPartAsync(_connection, default);
        await transaction.CommitAsync();
    }

    private async Task<long> WalAsync()
    {
        await using var command = new NpgsqlCommand("SELECT pg_current_wal_insert_lsn() - '0/0'::pg_lsn", _connection);
        return (long)(decimal)(await command.ExecuteScalarAsync())!;
    }
}
