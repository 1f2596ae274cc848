// Run (needs the PostgreSQL server binaries, as the tests do; GlobalSetup starts a throwaway server):
//   cd bench/Synchro.Pipeline.Benchmarks && dotnet run -c Release -- --filter '*WriteIsolationBenchmarks*'
using System.Globalization;
using System.Text;
using System.Threading.Channels;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Engines;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using Synchro.Pipeline.Buckets;
using Synchro.Pipeline.Changelog;
using Synchro.Pipeline.Decoding;
using Synchro.Pipeline.Decoding.Items;
using Synchro.Pipeline.Diagnostics;
using Synchro.Pipeline.LocalPostgres;
using Synchro.Pipeline.Protocol;
using Synchro.Pipeline.Registry;
using Synchro.Pipeline.Replication;

namespace Synchro.Pipeline.Benchmarks;

/// <summary>
/// The cost of one change the changelog refuses (invariant 7's backstop): a 10,000-change batch written and committed by the
/// writer stage on a real server, clean (baseline), and with one owner of 8,000 random characters — an index row too
/// large for <c>idx_sync_changelog_bucket_seq</c> (54000), the value — in the middle or at the end, so the writer
/// rolls the batch back to its savepoint and writes it in halves until the change is isolated.
/// </summary>
/// <remarks>
/// The id limits are raised for the run so the value reaches the server (with the default limits it would fail before
/// anything is written, at no cost). Each invocation writes new records into emptied tables (iteration setup, not timed).
/// Setup checks that every other change is written once and the refused one is recorded.
/// </remarks>
[MemoryDiagnoser]
[SimpleJob(RunStrategy.Monitoring, launchCount: 1, warmupCount: 3, iterationCount: 15)]
public class WriteIsolationBenchmarks
{
    public const int Changes = 10_000;

    // Bucket fan-in of a typical per-user layout: many records per owner.
    private const int Owners = 1_000;

    private static readonly TableRegistration s_orders = new("orders") { OwnerColumn = "user_id" };

    private readonly ChangeBatchPool _pool = new(capacity: 1);
    private readonly string _poisonOwner = RandomText(8_000);
    private LocalPostgresServer? _server;
    private NpgsqlDataSource? _database;
    private Channel<DecodedItem>? _items;
    private Channel<CommitReceipt>? _committed;
    private CancellationTokenSource? _stop;
    private Task? _writer;
    private ChangeBatch? _next;
    private ulong _lsn = 0x1000;

    [GlobalSetup]
    public async Task SetupAsync()
    {
        _server = await LocalPostgresServer.StartAsync();
        _database = NpgsqlDataSource.Create(await _server.CreateDatabaseAsync("isolation_bench"));
        await using (var connection = await _database.OpenConnectionAsync())
            await ChangelogSchema.EnsureAsync(connection);
        Console.WriteLine($"// Server: PostgreSQL {_server.ServerVersion} on port {_server.Port}");

        _items = Channel.CreateBounded<DecodedItem>(new BoundedChannelOptions(1) { SingleReader = true, SingleWriter = true });
        _committed = Channel.CreateUnbounded<CommitReceipt>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
        var registry = new TableRegistry().Add(s_orders);
        var writer = new WriterStage(_items.Reader, _committed.Writer, _database, _database, "bench", registry, new BatchLimits(Changes, long.MaxValue),
            new GuardedBucketAssigner(registry, null, 1_000), new PipelineMetrics(() => Lsn.Invalid, "bench"), TimeSpan.FromMinutes(10), NullLogger.Instance)
        {
            Limits = new ChangelogLimits(1_000_000, 1_000_000),
            Source = new SourceIdentity(1, 1, 1, "isolation_bench"),
        };
        _stop = new CancellationTokenSource();
        _writer = writer.RunAsync(_stop.Token, _stop.Token);

        // One run of each case, checked.
        foreach (var poisonAt in new int?[] { null, Changes / 2, Changes - 1 })
        {
            Prepare(poisonAt);
            await WriteAsync();
            var written = await ScalarAsync("SELECT count(*) FROM sync_changelog");
            var failed = await ScalarAsync("SELECT count(*) FROM sync_rule_failures WHERE error_text LIKE 'the changelog refused the change (54000)%'");
            var expected = poisonAt is null ? (Changes, 0) : (Changes - 1, 1);
            if ((written, failed) != expected)
                throw new InvalidOperationException($"Poison at {poisonAt}: {written:N0} changelog rows and {failed} refused change(s); expected {expected}.");
        }
        Console.WriteLine($"// Validation: a clean batch writes {Changes:N0} rows; with one poison row, {Changes - 1:N0} rows and 1 refused change.");
        Clean();
    }

    [IterationSetup(Target = nameof(CleanBatch))]
    public void PrepareClean() => Prepare(null);

    [IterationSetup(Target = nameof(PoisonInTheMiddle))]
    public void PrepareMiddle() => Prepare(Changes / 2);

    [IterationSetup(Target = nameof(PoisonAtTheEnd))]
    public void PrepareEnd() => Prepare(Changes - 1);

    [Benchmark(Baseline = true)]
    public Task CleanBatch() => WriteAsync();

    [Benchmark]
    public Task PoisonInTheMiddle() => WriteAsync();

    [Benchmark]
    public Task PoisonAtTheEnd() => WriteAsync();

    [GlobalCleanup]
    public async Task CleanupAsync()
    {
        if (_stop is not null)
        {
            await _stop.CancelAsync();
            await ((Task)_writer!).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
        if (_database is not null)
            await _database.DisposeAsync();
        if (_server is not null)
            await _server.DisposeAsync();
    }

    /// <summary>Hands the prepared batch to the writer and waits for its commit.</summary>
    private async Task WriteAsync()
    {
        await _items!.Writer.WriteAsync(_next!);
        await _committed!.Reader.ReadAsync();
    }

    /// <summary>Empties the sidecar tables and fills the next batch: 10,000 inserts of new orders, one of them poison when <paramref name="poisonAt"/> is set.</summary>
    private void Prepare(int? poisonAt)
    {
        Clean();
        var batch = _pool.Rent();
        for (var i = 0; i < Changes; i++)
        {
            var first = batch.ValueMark.Values;
            // The referenced columns in their order: id, deleted_at, user_id.
            batch.AddText(Encoding.UTF8.GetBytes($"00000000-0000-4000-8000-{i:x12}"));
            batch.AddEmpty(TupleValueKind.Null);
            batch.AddText(Encoding.UTF8.GetBytes(i == poisonAt ? _poisonOwner : (i % Owners).ToString("D4", CultureInfo.InvariantCulture)));
            batch.Add(new DecodedChange(s_orders, ChangeOperation.Insert, first));
        }
        _lsn += 0x1000;
        batch.EndLsn = new Lsn(_lsn);
        batch.Transactions = 1;
        _next = batch;
    }

    private void Clean()
    {
        using var connection = _database!.OpenConnection();
        using var command = new NpgsqlCommand("TRUNCATE sync_changelog, sync_bucket_edges, sync_rule_failures", connection);
        command.ExecuteNonQuery();
    }

    private async Task<long> ScalarAsync(string sql)
    {
        await using var command = _database!.CreateCommand(sql);
        return (long)(await command.ExecuteScalarAsync())!;
    }

    /// <summary>Printable ASCII from a fixed seed: text pglz cannot compress, so an index entry must hold all of it.</summary>
    private static string RandomText(int length)
    {
        var random = new Random(20261213);
        return string.Create(length, random, (chars, r) =>
        {
            for (var i = 0; i < chars.Length; i++)
                chars[i] = (char)r.Next(33, 127);
        });
    }
}
