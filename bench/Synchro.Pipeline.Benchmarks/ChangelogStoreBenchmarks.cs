// Run (needs the PostgreSQL server binaries, as the tests do; GlobalSetup starts a throwaway server):
//   cd bench/Synchro.Pipeline.Benchmarks && dotnet run -c Release -- --filter '*ChangelogStoreBenchmarks*'
using System.Globalization;
using BenchmarkDotNet.Attributes;
using Npgsql;
using Synchro.Pipeline.Changelog;
using Synchro.Pipeline.LocalPostgres;

namespace Synchro.Pipeline.Benchmarks;

/// <summary>
/// The changelog store's bulk paths on a real server (formerly the timed test <c>ChangelogStoreThroughputTests</c>),
/// results per row, each run in one transaction with its commit as the writer stage does per batch: <see cref="Rows"/>
/// changelog rows by binary COPY (baseline), as many new bucket edges by binary COPY, and the edges of as many records
/// loaded by one query.
/// </summary>
/// <remarks>
/// Records are uuid-text ids of one table in <c>user:</c> buckets of <see cref="Owners"/> owners, one edge each (a
/// typical per-user fan-in). Setup checks that every row and edge is stored and every record's edge comes back.
/// </remarks>
[MemoryDiagnoser]
public class ChangelogStoreBenchmarks
{
    public const int Rows = 100_000;

    // Bucket fan-in of a typical per-user layout: many records per owner.
    private const int Owners = 1_000;

    private readonly List<RecordKey> _records = [];
    private readonly List<(RecordKey Record, string BucketId)> _edges = [];
    private readonly List<ChangelogRow> _changelog = [];
    private LocalPostgresServer? _server;
    private NpgsqlConnection? _connection;

    [GlobalSetup]
    public async Task SetupAsync()
    {
        for (var i = 0; i < Rows; i++)
        {
            var record = new RecordKey("public.orders", $"00000000-0000-4000-8000-{i:x12}");
            var bucket = "user:" + (i % Owners).ToString("D4", CultureInfo.InvariantCulture);
            _records.Add(record);
            _edges.Add((record, bucket));
            _changelog.Add(new ChangelogRow(bucket, record.TableName, record.RecordId, ChangeOperation.Insert));
        }

        _server = await LocalPostgresServer.StartAsync();
        _connection = new NpgsqlConnection(await _server.CreateDatabaseAsync("store_bench"));
        await _connection.OpenAsync();
        await ChangelogSchema.EnsureAsync(_connection);
        Console.WriteLine($"// Server: PostgreSQL {_server.ServerVersion} on port {_server.Port}");

        // One run of each path, checked; the edges stay for EdgeLoad, the other two empty their table per iteration.
        await ChangelogCopy();
        await EdgeAdditions();
        var loaded = await EdgeLoad();
        var changelogRows = await CountAsync("sync_changelog");
        var edgeRows = await CountAsync("sync_bucket_edges");
        if (changelogRows != Rows || edgeRows != Rows || loaded != Rows)
            throw new InvalidOperationException($"Stored {changelogRows:N0} changelog rows and {edgeRows:N0} edges and loaded the edges of {loaded:N0} records; expected {Rows:N0} each.");
        Console.WriteLine($"// Validation: {Rows:N0} changelog rows and {Rows:N0} edges stored, the edges of all {Rows:N0} records loaded.");
        TruncateChangelog();
    }

    [IterationSetup(Target = nameof(ChangelogCopy))]
    public void TruncateChangelog() => Execute("TRUNCATE sync_changelog");

    [IterationSetup(Target = nameof(EdgeAdditions))]
    public void TruncateEdges() => Execute("TRUNCATE sync_bucket_edges");

    [GlobalCleanup]
    public async Task CleanupAsync()
    {
        if (_connection is not null)
            await _connection.DisposeAsync();
        if (_server is not null)
            await _server.DisposeAsync();
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = Rows)]
    public Task ChangelogCopy() => InTransactionAsync(() => ChangelogStore.WriteChangelogAsync(_connection!, _changelog, default));

    [Benchmark(OperationsPerInvoke = Rows)]
    public Task EdgeAdditions() => InTransactionAsync(() => ChangelogStore.ApplyEdgesAsync(_connection!, _edges, [], default));

    [Benchmark(OperationsPerInvoke = Rows)]
    public async Task<int> EdgeLoad()
    {
        var loaded = 0;
        await InTransactionAsync(async () => loaded = (await ChangelogStore.LoadEdgesAsync(_connection!, _records, default)).Count);
        return loaded;
    }

    private async Task InTransactionAsync(Func<Task> run)
    {
        await using var transaction = await _connection!.BeginTransactionAsync();
        await run();
        await transaction.CommitAsync();
    }

    private void Execute(string sql)
    {
        using var command = new NpgsqlCommand(sql, _connection);
        command.ExecuteNonQuery();
    }

    private async Task<long> CountAsync(string table)
    {
        // The table name is one of the library's constants, never input.
        await using var command = new NpgsqlCommand($"SELECT count(*) FROM {table}", _connection);
        return (long)(await command.ExecuteScalarAsync())!;
    }
}
