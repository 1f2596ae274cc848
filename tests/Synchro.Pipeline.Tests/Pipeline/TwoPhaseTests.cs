using Synchro.Pipeline.Replication;
using Synchro.Pipeline.Tests.Infrastructure;
using static Synchro.Pipeline.Tests.Pipeline.StreamedTransactionTests;

namespace Synchro.Pipeline.Tests.Pipeline;

/// <summary>
/// Two-phase decoding (protocol 3, a two_phase slot): a prepared transaction reaches the changelog at COMMIT PREPARED
/// and never before, exactly once even when the pipeline restarts in between (the server then sends only the COMMIT
/// PREPARED); ROLLBACK PREPARED leaves nothing.
/// </summary>
[Collection(PostgresCollection.Name)]
[Trait(TestCategories.Name, TestCategories.VersionSensitive)]
public sealed class TwoPhaseTests(PostgresServerFixture postgres)
{
    private const string PreparedCount = "SELECT count(*) FROM sync_prepared_transactions";

    [Fact]
    public async Task A_prepared_transaction_reaches_the_changelog_at_COMMIT_PREPARED_and_not_before()
    {
        await using var harness = await CreateAsync("twophase_commit");
        await harness.StartAsync(TwoPhaseOptions(harness));

        await harness.ExecuteAsync($"BEGIN; {Insert(1, 3)}; PREPARE TRANSACTION 'tx one';");
        await WaitForPreparedAsync(harness, 1);
        await harness.ExecuteAsync($"INSERT INTO orders (id, user_id) VALUES ('{Uuid(900_000)}', 'later')");
        Assert.Equal([$"user:later orders {Uuid(900_000)} 1"], await harness.WaitForChangelogAsync(1));
        Assert.True(await harness.ScalarAsync<bool>("SELECT two_phase FROM pg_replication_slots WHERE slot_name = '" + harness.Slot + "'"));

        await harness.ExecuteAsync("COMMIT PREPARED 'tx one'");

        List<string> expected = [$"user:later orders {Uuid(900_000)} 1", .. Rows(1, 3)];
        Assert.Equal(expected, await harness.WaitForChangelogAsync(4));
        await WaitForPreparedAsync(harness, 0);
        Assert.Equal(4L, await harness.ScalarAsync<long>("SELECT count(*) FROM sync_bucket_edges"));
    }

    [Fact]
    public async Task ROLLBACK_PREPARED_leaves_no_trace()
    {
        await using var harness = await CreateAsync("twophase_rollback");
        await harness.StartAsync(TwoPhaseOptions(harness));

        await harness.ExecuteAsync($"BEGIN; {Insert(1, 100)}; PREPARE TRANSACTION 'doomed';");
        await WaitForPreparedAsync(harness, 1);
        await harness.ExecuteAsync("ROLLBACK PREPARED 'doomed'");
        await harness.ExecuteAsync($"INSERT INTO orders (id, user_id) VALUES ('{Uuid(900_000)}', 'marker')");

        Assert.Equal([$"user:marker orders {Uuid(900_000)} 1"], await harness.WaitForChangelogAsync(1));
        Assert.Equal(0L, await harness.ScalarAsync<long>(PreparedCount));
        Assert.Equal(1L, await harness.ScalarAsync<long>("SELECT count(*) FROM sync_bucket_edges"));
    }

    [Fact]
    public async Task A_transaction_prepared_before_a_restart_is_written_once_at_its_COMMIT_PREPARED()
    {
        await using var harness = await CreateAsync("twophase_restart");
        await harness.StartAsync(TwoPhaseOptions(harness));

        await harness.ExecuteAsync($"BEGIN; {Insert(1, 2_500)}; PREPARE TRANSACTION 'across restart';");
        await WaitForPreparedAsync(harness, 3);
        var afterPrepare = await harness.ScalarAsync<long>("SELECT confirmed_lsn FROM sync_wal_position");
        await harness.StopAsync();
        // The server was told a position past the PREPARE: from now on it sends the COMMIT PREPARED alone.
        Assert.True(await harness.ScalarAsync<bool>(
            $"SELECT (confirmed_flush_lsn - '0/0'::pg_lsn)::bigint >= {afterPrepare} FROM pg_replication_slots WHERE slot_name = '{harness.Slot}'"));

        await harness.ExecuteAsync("COMMIT PREPARED 'across restart'");
        var options = TwoPhaseOptions(harness);
        await harness.StartAsync(options);

        Assert.Equal(Rows(1, 2_500), await harness.WaitForChangelogAsync(2_500));
        await WaitForPreparedAsync(harness, 0);
        // The rows came from sync_prepared_transactions; whatever the server streamed again of the transaction is gone.
        Assert.Equal(0, harness.Pipeline!.SpillStatistics.ReplayedTransactions);
        Assert.Empty(Directory.GetFiles(WalPipeline.SpillDirectoryFor(options)));
        await harness.ExecuteAsync($"INSERT INTO orders (id, user_id) VALUES ('{Uuid(900_000)}', 'marker')");
        await harness.WaitForChangelogAsync(2_501);
        Assert.Equal(2_501L, await harness.ScalarAsync<long>("SELECT count(*) FROM sync_changelog"));
    }

    [Fact]
    public async Task A_large_streamed_prepared_transaction_is_written_at_COMMIT_PREPARED_after_what_committed_meanwhile()
    {
        await using var harness = await CreateAsync("twophase_streamed");
        var options = TwoPhaseOptions(harness);
        var spillDirectory = WalPipeline.SpillDirectoryFor(options);
        await harness.StartAsync(options);
        var statistics = harness.Pipeline!.SpillStatistics;

        await using (var a = await OpenAsync(harness))
        {
            await ExecuteAsync(a, "BEGIN");
            await ExecuteAsync(a, Insert(1, 20_000));
            await WaitAsync(() => statistics.BytesSpilled > 10_000 * 40, "the prepared transaction to stream");
            await ExecuteAsync(a, "PREPARE TRANSACTION 'big one'");
        }
        // Stored in chunks of at most MaxBatchRows changes.
        await WaitForPreparedAsync(harness, 20);
        await harness.ExecuteAsync($"INSERT INTO orders (id, user_id) VALUES ('{Uuid(900_000)}', 'small')");
        Assert.Equal([$"user:small orders {Uuid(900_000)} 1"], await harness.WaitForChangelogAsync(1));

        await harness.ExecuteAsync("COMMIT PREPARED 'big one'");

        List<string> expected = [$"user:small orders {Uuid(900_000)} 1", .. Rows(1, 20_000)];
        Assert.Equal(expected, await harness.WaitForChangelogAsync(20_001));
        await WaitForPreparedAsync(harness, 0);
        Assert.Empty(Directory.GetFiles(spillDirectory));
    }

    [Fact]
    public async Task A_two_phase_slot_without_the_TwoPhase_option_is_a_startup_error()
    {
        await using var harness = await CreateAsync("twophase_mismatch");
        await ReplicationSlots.CreateIfMissingAsync(harness.ConnectionString, harness.Slot, twoPhase: true, CancellationToken.None);
        var options = harness.Options();
        options.TwoPhase = false;

        var error = await Assert.ThrowsAsync<WalPipelineConfigurationException>(() => new WalPipeline(options).RunAsync());

        Assert.Contains($"Replication slot '{harness.Slot}' was created with two_phase", error.Message, StringComparison.Ordinal);
        Assert.Contains("Turn TwoPhase on", error.Message, StringComparison.Ordinal);
    }

    private async Task<PipelineHarness> CreateAsync(string name)
    {
        var harness = await PipelineHarness.CreateAsync(postgres, name);
        await LowerDecodingMemoryAsync(harness);
        return harness;
    }

    private static WalPipelineOptions TwoPhaseOptions(PipelineHarness harness)
    {
        var options = harness.Options(maxBatchRows: 1000);
        options.TwoPhase = true;
        return options;
    }

    /// <summary>Waits until the prepared transactions table holds exactly <paramref name="chunks"/> rows.</summary>
    private static async Task WaitForPreparedAsync(PipelineHarness harness, long chunks)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (await harness.ScalarAsync<long>(PreparedCount) != chunks)
        {
            if (harness.Running.IsFaulted)
                await harness.Running;
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"sync_prepared_transactions did not reach {chunks} rows in 60 s.");
            await Task.Delay(20);
        }
    }
}
