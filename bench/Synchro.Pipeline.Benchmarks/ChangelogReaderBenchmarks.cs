// Run (needs the PostgreSQL server binaries, as the tests do; GlobalSetup starts a throwaway server):
//   cd bench/Synchro.Pipeline.Benchmarks && dotnet run -c Release -- --filter '*ChangelogReaderBenchmarks*' --job short
using System.Globalization;
using BenchmarkDotNet.Attributes;
using Npgsql;
using Synchro.Pipeline.Changelog;
using Synchro.Pipeline.LocalPostgres;
using Synchro.Pipeline.Reading;

namespace Synchro.Pipeline.Benchmarks;

/// <summary>
/// A page of <see cref="PageRows"/> changelog rows for <see cref="Buckets"/> buckets, read by <see cref="ChangelogReader"/>
/// (every entry's record id touched as a span), against the same rows read with a plain <see cref="NpgsqlDataReader"/>
/// into strings (baseline), from the middle of a 1,000,000-row changelog of 500 buckets (2,000 rows each, interleaved).
/// </summary>
/// <remarks>
/// The baseline is the query an application would write first (<c>bucket_id = ANY($1) AND seq &gt; $2 ORDER BY seq
/// LIMIT 1000</c>): on this even, dense layout the primary key order finds the page quickly, but it has no horizon or
/// cursor check and its work grows with the rows of other buckets it skips. Setup checks that both read the same rows.
/// </remarks>
[MemoryDiagnoser]
public class ChangelogReaderBenchmarks
{
    public const int PageRows = 1_000;

    private const int TotalRows = 1_000_000;
    private const int AllBuckets = 500;

    // The middle of the changelog: every bucket has 1,000 rows after it.
    private const long Cursor = TotalRows / 2;

    private LocalPostgresServer? _server;
    private NpgsqlDataSource? _dataSource;
    private ChangelogReader? _reader;
    private string[] _buckets = [];

    [Params(1, 10, 300)]
    public int Buckets { get; set; }

    [GlobalSetup]
    public async Task SetupAsync()
    {
        _server = await LocalPostgresServer.StartAsync();
        var connectionString = await _server.CreateDatabaseAsync("reader_bench");
        _dataSource = NpgsqlDataSource.Create(connectionString);
        await using (var connection = await _dataSource.OpenConnectionAsync())
        {
            await ChangelogSchema.EnsureAsync(connection);
            await using var command = new NpgsqlCommand($"""
                INSERT INTO sync_changelog (bucket_id, table_name, record_id, operation)
                SELECT 'user:' || lpad((n % {AllBuckets})::text, 4, '0'), 'public.orders', '00000000-0000-4000-8000-' || lpad(to_hex(n), 12, '0'), 1 + n % 3
                FROM generate_series(1, {TotalRows}) AS n
                """, connection);
            command.CommandTimeout = 600;
            await command.ExecuteNonQueryAsync();
            await using var vacuum = new NpgsqlCommand("VACUUM ANALYZE sync_changelog", connection) { CommandTimeout = 600 };
            await vacuum.ExecuteNonQueryAsync();
        }
        _reader = new ChangelogReader(_dataSource);
        // Spread over the bucket range, so the 300 are not one contiguous key range.
        _buckets = Enumerable.Range(0, Buckets).Select(i => "user:" + (i * AllBuckets / Buckets).ToString("D4", CultureInfo.InvariantCulture)).ToArray();
        Console.WriteLine($"// Server: PostgreSQL {_server.ServerVersion} on port {_server.Port}");

        var plain = await ReadPlainAsync();
        using var page = await _reader.ReadAsync(_buckets, ChangelogCursor.FromPosition(Cursor), PageRows);
        var read = new List<string>();
        foreach (var entry in page)
            read.Add($"{entry.Seq}|{entry.BucketId}|{entry.TableName}|{entry.RecordId}|{(short)entry.Operation}");
        if (page.Count != PageRows || !read.SequenceEqual(plain))
            throw new InvalidOperationException($"The reader returned {page.Count:N0} rows, the plain query {plain.Count:N0}; expected the same {PageRows:N0}.");
        Console.WriteLine($"// Validation: both read the same {PageRows:N0} rows of {Buckets} buckets, seq {read[0].Split('|')[0]} to {read[^1].Split('|')[0]}.");
    }

    [GlobalCleanup]
    public async Task CleanupAsync()
    {
        if (_dataSource is not null)
            await _dataSource.DisposeAsync();
        if (_server is not null)
            await _server.DisposeAsync();
    }

    [Benchmark(Baseline = true)]
    public async Task<long> PlainDataReader()
    {
        await using var connection = await _dataSource!.OpenConnectionAsync();
        await using var command = new NpgsqlCommand(PlainSql, connection);
        command.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = _buckets });
        command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = Cursor });
        command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = PageRows });
        await using var reader = await command.ExecuteReaderAsync();
        long sum = 0;
        while (await reader.ReadAsync())
        {
            sum += reader.GetInt64(0);
            sum += reader.GetString(1).Length + reader.GetString(2).Length + reader.GetString(3).Length + reader.GetInt16(4);
        }
        return sum;
    }

    [Benchmark]
    public async Task<long> ChangelogReaderPage()
    {
        using var page = await _reader!.ReadAsync(_buckets, ChangelogCursor.FromPosition(Cursor), PageRows);
        long sum = 0;
        foreach (var entry in page)
            sum += entry.Seq + entry.BucketId.Length + entry.TableName.Length + entry.RecordIdSpan.Length + (short)entry.Operation;
        return sum;
    }

    private const string PlainSql = "SELECT seq, bucket_id, table_name, record_id, operation FROM sync_changelog WHERE bucket_id = ANY($1) AND seq > $2 ORDER BY seq LIMIT $3";

    private async Task<List<string>> ReadPlainAsync()
    {
        var rows = new List<string>();
        await using var connection = await _dataSource!.OpenConnectionAsync();
        await using var command = new NpgsqlCommand(PlainSql, connection);
        command.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = _buckets });
        command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = Cursor });
        command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = PageRows });
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
            rows.Add($"{reader.GetInt64(0)}|{reader.GetString(1)}|{reader.GetString(2)}|{reader.GetString(3)}|{reader.GetInt16(4)}");
        return rows;
    }
}
