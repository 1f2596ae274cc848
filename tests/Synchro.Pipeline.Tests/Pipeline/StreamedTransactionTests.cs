using System.Globalization;
using Npgsql;
using Synchro.Pipeline.Tests.Infrastructure;

namespace Synchro.Pipeline.Tests.Pipeline;

/// <summary>
/// Transactions the server streams while they run (protocol 2, <c>streaming on</c>): written once, at their commit and
/// in commit order, through spill files bounded by the batch limits; aborted streams and rolled-back savepoints leave
/// nothing. The database's <c>logical_decoding_work_mem</c> is 64 kB, so a few hundred rows are enough to stream.
/// </summary>
[Collection(PostgresCollection.Name)]
[Trait(TestCategories.Name, TestCategories.VersionSensitive)]
public sealed class StreamedTransactionTests(PostgresServerFixture postgres)
{
    private const int MaxBatchRows = 1000;

    [Fact]
    public async Task Interleaved_streamed_transactions_are_written_at_their_commits_after_a_small_one_that_committed_first()
    {
        await using var harness = await CreateAsync("stream_order");
        var spillDirectory = SpillDirectory(harness);
        await harness.StartAsync(Options(harness));
        var statistics = harness.Pipeline!.SpillStatistics;

        await using var a = await OpenAsync(harness);
        await using var b = await OpenAsync(harness);
        await ExecuteAsync(a, "BEGIN");
        await ExecuteAsync(b, "BEGIN");
        await ExecuteAsync(a, Insert(1, 10_000));
        await ExecuteAsync(b, Insert(100_001, 110_000));
        await WaitAsync(() => statistics.FilesCreated >= 2 && Directory.GetFiles(spillDirectory).Length == 2, "both transactions to stream into spill files");

        // A small transaction commits while both large ones are open: it comes first in the changelog.
        await harness.ExecuteAsync($"INSERT INTO orders (id, user_id) VALUES ('{Uuid(900_000)}', 'small')");
        var first = await harness.WaitForChangelogAsync(1);
        Assert.Equal([$"user:small orders {Uuid(900_000)} 1"], first);

        await ExecuteAsync(a, Insert(10_001, 20_000));
        await ExecuteAsync(b, "COMMIT");
        await ExecuteAsync(a, "COMMIT");

        var rows = await harness.WaitForChangelogAsync(20_001 + 10_000);
        List<string> expected = [$"user:small orders {Uuid(900_000)} 1", .. Rows(100_001, 110_000), .. Rows(1, 20_000)];
        Assert.Equal(expected, rows);
        Assert.Equal(30_001L, await harness.ScalarAsync<long>("SELECT count(*) FROM sync_bucket_edges"));

        // Bounded memory: the transactions went through files, and no batch read back from them exceeded the limit.
        Assert.True(statistics.LargestFileBytes > 20_000 * 40, $"the largest spill file had {statistics.LargestFileBytes} bytes");
        Assert.InRange(statistics.LargestReplayBatch, 1, MaxBatchRows);
        Assert.Equal(2, statistics.ReplayedTransactions);
        Assert.Empty(Directory.GetFiles(spillDirectory));
    }

    [Fact]
    public async Task An_aborted_streamed_transaction_leaves_no_rows_no_edges_and_no_files()
    {
        await using var harness = await CreateAsync("stream_abort");
        var spillDirectory = SpillDirectory(harness);
        await harness.StartAsync(Options(harness));
        var statistics = harness.Pipeline!.SpillStatistics;

        await using (var a = await OpenAsync(harness))
        {
            await ExecuteAsync(a, "BEGIN");
            await ExecuteAsync(a, Insert(1, 20_000));
            await WaitAsync(() => statistics.BytesSpilled > 10_000 * 40, "the transaction to stream");
            await ExecuteAsync(a, "ROLLBACK");
        }
        await harness.ExecuteAsync($"INSERT INTO orders (id, user_id) VALUES ('{Uuid(900_000)}', 'marker')");

        var rows = await harness.WaitForChangelogAsync(1);
        await harness.WaitUntilCaughtUpAsync();
        Assert.Equal([$"user:marker orders {Uuid(900_000)} 1"], await harness.ChangelogAsync());
        Assert.Equal(1L, await harness.ScalarAsync<long>("SELECT count(*) FROM sync_bucket_edges"));
        Assert.Equal(0, statistics.ReplayedTransactions);
        Assert.Empty(Directory.GetFiles(spillDirectory));
        Assert.Single(rows);
    }

    [Fact]
    public async Task A_savepoint_rolled_back_inside_a_streamed_transaction_leaves_only_the_surviving_rows()
    {
        await using var harness = await CreateAsync("stream_savepoint");
        var spillDirectory = SpillDirectory(harness);
        await harness.StartAsync(Options(harness));
        var statistics = harness.Pipeline!.SpillStatistics;

        await using (var a = await OpenAsync(harness))
        {
            await ExecuteAsync(a, "BEGIN");
            await ExecuteAsync(a, Insert(1, 5_000));
            await ExecuteAsync(a, "SAVEPOINT s1");
            await ExecuteAsync(a, Insert(5_001, 10_000));
            // The rolled-back rows must have been streamed already, so the rollback has to cut them from the file.
            await WaitAsync(() => statistics.BytesSpilled > 8_000 * 45, "the savepoint's rows to stream");
            await ExecuteAsync(a, "ROLLBACK TO SAVEPOINT s1");
            await ExecuteAsync(a, Insert(10_001, 13_000));
            await ExecuteAsync(a, "SAVEPOINT s2");
            await ExecuteAsync(a, Insert(13_001, 14_000));
            await ExecuteAsync(a, "RELEASE SAVEPOINT s2");
            await ExecuteAsync(a, "SAVEPOINT s3");
            await ExecuteAsync(a, Insert(14_001, 15_000));
            await ExecuteAsync(a, "ROLLBACK TO SAVEPOINT s3");
            await ExecuteAsync(a, "COMMIT");
        }

        var rows = await harness.WaitForChangelogAsync(5_000 + 4_000);
        List<string> expected = [.. Rows(1, 5_000), .. Rows(10_001, 14_000)];
        Assert.Equal(expected, rows);
        Assert.Equal(9_000L, await harness.ScalarAsync<long>("SELECT count(*) FROM sync_bucket_edges"));
        Assert.Equal(1, statistics.ReplayedTransactions);
        Assert.Empty(Directory.GetFiles(spillDirectory));
    }

    [Fact]
    public async Task Without_streaming_a_large_transaction_is_still_written_once()
    {
        await using var harness = await CreateAsync("stream_off");
        var spillDirectory = SpillDirectory(harness);
        var options = Options(harness);
        options.StreamLargeTransactions = false;
        await harness.StartAsync(options);

        await harness.ExecuteAsync(Insert(1, 5_000));

        Assert.Equal(Rows(1, 5_000), await harness.WaitForChangelogAsync(5_000));
        Assert.Equal(0, harness.Pipeline!.SpillStatistics.FilesCreated);
    }

    private async Task<PipelineHarness> CreateAsync(string name)
    {
        var harness = await PipelineHarness.CreateAsync(postgres, name);
        await LowerDecodingMemoryAsync(harness);
        return harness;
    }

    /// <summary>Makes the walsender of the harness's database stream transactions past 64 kB of changes.</summary>
    internal static Task LowerDecodingMemoryAsync(PipelineHarness harness) => harness.ExecuteAsync(
        "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET logical_decoding_work_mem = %L', current_database(), '64kB'); END $$");

    internal static string SpillDirectory(PipelineHarness harness)
        => WalPipeline.SpillDirectoryFor(Options(harness));

    internal static WalPipelineOptions Options(PipelineHarness harness)
    {
        var options = harness.Options(maxBatchRows: MaxBatchRows);
        options.SpillDirectory = Path.Combine(Path.GetTempPath(), "synchro-spill-tests");
        return options;
    }

    internal static string Insert(int from, int to)
        => string.Create(CultureInfo.InvariantCulture, $"INSERT INTO orders (id, user_id) SELECT lpad(to_hex(g), 32, '0')::uuid, 'u' || (g % 10) FROM generate_series({from}, {to}) g ORDER BY g");

    internal static List<string> Rows(int from, int to)
        => Enumerable.Range(from, to - from + 1).Select(g => string.Create(CultureInfo.InvariantCulture, $"user:u{g % 10} orders {Uuid(g)} 1")).ToList();

    internal static string Uuid(int g) => Guid.ParseExact(g.ToString("x32", CultureInfo.InvariantCulture), "N").ToString();

    internal static async Task<NpgsqlConnection> OpenAsync(PipelineHarness harness)
    {
        var connection = new NpgsqlConnection(harness.ConnectionString);
        await connection.OpenAsync();
        return connection;
    }

    internal static async Task ExecuteAsync(NpgsqlConnection connection, string sql)
    {
        await using var command = new NpgsqlCommand(sql, connection) { CommandTimeout = 600 };
        await command.ExecuteNonQueryAsync();
    }

    internal static async Task WaitAsync(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"Waited 60 s for {what}.");
            await Task.Delay(20);
        }
    }
}
