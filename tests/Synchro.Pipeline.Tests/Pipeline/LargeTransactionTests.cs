using System.Diagnostics;
using System.Globalization;
using Synchro.Pipeline.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Synchro.Pipeline.Tests.Pipeline;

/// <summary>
/// Invariant 5: a source transaction far larger than the batch limits passes through whole, once,
/// with the pipeline process's memory bounded by its limits rather than by the transaction.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class LargeTransactionTests(PostgresServerFixture postgres, ITestOutputHelper output)
{
    private const int Rows = 1_000_000;
    private const int MaxBatchRows = 10_000;

    // The host's peak resident memory may not exceed this: the runtime and its JIT (~70 MB), the
    // 16 MiB WAL buffer, and a few batches of 10,000 changes in flight.
    private const long PeakBudgetBytes = 400L * 1024 * 1024;

    [Fact]
    public async Task A_million_row_transaction_is_written_once_within_the_memory_budget()
    {
        var connectionString = await postgres.CreateDatabaseAsync("large_txn");
        await Sql.ExecuteAsync(connectionString, """
            CREATE TABLE big_orders (id int PRIMARY KEY, user_id text NOT NULL, deleted_at timestamptz);
            CREATE PUBLICATION big_pub FOR TABLE big_orders;
            """);
        using var host = PipelineHostProcess.Start(connectionString, "slot_large_txn", "big_pub", "big_orders", "user_id", MaxBatchRows);
        await PipelineHostProcess.WaitForSlotAsync(connectionString, "slot_large_txn");

        var clock = Stopwatch.StartNew();
        await Sql.ExecuteAsync(connectionString, $"INSERT INTO big_orders SELECT g, 'u' || (g % 100) FROM generate_series(1, {Rows}) g");
        var inserted = clock.Elapsed;

        long peak = 0;
        await CommittedPosition.WaitUntilPersistedAsync(connectionString, connectionString, "slot_large_txn", () =>
        {
            peak = Math.Max(peak, host.PeakResidentBytes());
            Assert.False(host.HasExited, "the pipeline process exited");
            return Task.CompletedTask;
        }, TimeSpan.FromMinutes(5));
        var written = clock.Elapsed;
        peak = Math.Max(peak, host.PeakResidentBytes());

        Assert.Equal((long)Rows, await Sql.ScalarAsync<long>(connectionString, "SELECT count(*) FROM sync_changelog"));
        Assert.Equal((long)Rows, await Sql.ScalarAsync<long>(connectionString, "SELECT count(DISTINCT record_id) FROM sync_changelog WHERE operation = 1"));
        Assert.Equal((long)Rows, await Sql.ScalarAsync<long>(connectionString, "SELECT count(*) FROM sync_bucket_edges"));
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{Rows:N0} rows: source insert {inserted.TotalSeconds:F1} s, in the changelog after {written.TotalSeconds:F1} s ({Rows / (written - inserted).TotalSeconds:N0} changes/s after the commit); host peak RSS {peak / (1024.0 * 1024):F0} MiB"));
        Assert.True(peak < PeakBudgetBytes, $"peak resident memory {peak / (1024 * 1024)} MiB exceeds {PeakBudgetBytes / (1024 * 1024)} MiB");
    }
}
