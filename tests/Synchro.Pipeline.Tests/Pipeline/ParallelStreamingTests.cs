using Synchro.Pipeline.Tests.Infrastructure;
using static Synchro.Pipeline.Tests.Pipeline.StreamedTransactionTests;

namespace Synchro.Pipeline.Tests.Pipeline;

/// <summary>
/// pgoutput protocol 4 with <c>streaming 'parallel'</c> (PostgreSQL 16+), which the load harness compares with protocol 2
/// (docs/performance.md, "Protocol 4"): the server then adds the abort LSN and time to every stream abort, so an aborted
/// subtransaction and an aborted transaction, both streamed, must parse and leave nothing.
/// </summary>
[Collection(Postgres17Collection.Name)]
public sealed class ParallelStreamingTests(Postgres17ServerFixture postgres)
{
    [Fact]
    public async Task Streamed_aborts_carry_their_abort_info_and_leave_only_the_committed_rows()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "parallel_streaming");
        await LowerDecodingMemoryAsync(harness);
        var options = Options(harness);
        options.ParallelStreaming = true;
        await harness.StartAsync(options);
        var statistics = harness.Pipeline!.SpillStatistics;
        var started = await harness.ScalarAsync<string>(
            "SELECT a.query FROM pg_stat_activity a JOIN pg_replication_slots s ON s.active_pid = a.pid WHERE s.slot_name = '" + harness.Slot + "'");
        Assert.Contains("\"proto_version\" '4'", started, StringComparison.Ordinal);
        Assert.Contains("\"streaming\" 'parallel'", started, StringComparison.Ordinal);

        await using (var aborted = await OpenAsync(harness))
        {
            await ExecuteAsync(aborted, "BEGIN");
            await ExecuteAsync(aborted, Insert(20_001, 30_000));
            await WaitAsync(() => statistics.BytesSpilled > 5_000 * 40, "the transaction to be aborted to stream");
            await ExecuteAsync(aborted, "ROLLBACK");
        }
        await using (var committed = await OpenAsync(harness))
        {
            await ExecuteAsync(committed, "BEGIN");
            await ExecuteAsync(committed, Insert(1, 5_000));
            await ExecuteAsync(committed, "SAVEPOINT s1");
            await ExecuteAsync(committed, Insert(5_001, 10_000));
            await WaitAsync(() => statistics.BytesSpilled > (5_000 + 8_000) * 40, "the savepoint's rows to stream");
            await ExecuteAsync(committed, "ROLLBACK TO SAVEPOINT s1");
            await ExecuteAsync(committed, Insert(10_001, 12_000));
            await ExecuteAsync(committed, "COMMIT");
        }

        Assert.Equal([.. Rows(1, 5_000), .. Rows(10_001, 12_000)], await harness.WaitForChangelogAsync(7_000));
        Assert.Equal(7_000L, await harness.ScalarAsync<long>("SELECT count(*) FROM sync_bucket_edges"));
        Assert.Equal(1, statistics.ReplayedTransactions);
        Assert.Empty(Directory.GetFiles(SpillDirectory(harness)));
    }
}
