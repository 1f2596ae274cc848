using System.Text.RegularExpressions;
using Microsoft.Extensions.Logging;
using Synchro.Pipeline.Protocol;
using Synchro.Pipeline.Tests.Infrastructure;

namespace Synchro.Pipeline.Tests.Pipeline;

/// <summary>Skipping one source transaction on purpose (<c>synchro-pipeline skip --lsn</c>), as ALTER SUBSCRIPTION ... SKIP does.</summary>
[Collection(PostgresCollection.Name)]
public sealed partial class TransactionSkipTests(PostgresServerFixture postgres)
{
    private const string A = "00000000-0000-0000-0000-00000000000a";
    private const string B = "00000000-0000-0000-0000-00000000000b";
    private const string C = "00000000-0000-0000-0000-00000000000c";
    private const string D = "00000000-0000-0000-0000-00000000000d";
    private const string E = "00000000-0000-0000-0000-00000000000e";

    [Fact]
    public async Task A_skipped_transaction_keeps_its_changes_in_the_failures_and_everything_around_it_arrives_once()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "skip_plain");
        await harness.StartAsync();
        await harness.ExecuteAsync($"INSERT INTO orders (id, user_id) VALUES ('{A}', 'alice')");
        await harness.WaitForChangelogAsync(1);
        await harness.StopAsync();

        await harness.ExecuteAsync($"""
            BEGIN;
            INSERT INTO orders (id, user_id) VALUES ('{B}', 'bob');
            UPDATE orders SET user_id = 'carol' WHERE id = '{A}';
            COMMIT;
            """);
        await harness.ExecuteAsync($"INSERT INTO orders (id, user_id) VALUES ('{D}', 'dave')");
        var skipped = await CommitLsnOfTransactionWithAsync(harness, B);
        await WalPipeline.SkipTransactionAsync(harness.Options(), skipped);
        Assert.Equal(1, await harness.ScalarAsync<long>("SELECT count(*) FROM sync_transaction_skips"));

        var logs = new RecordingLoggerFactory();
        var options = harness.Options();
        options.LoggerFactory = logs;
        await harness.StartAsync(options);
        await harness.ExecuteAsync($"INSERT INTO orders (id, user_id) VALUES ('{E}', 'erin')");

        Assert.Equal([$"user:alice orders {A} 1", $"user:dave orders {D} 1", $"user:erin orders {E} 1"], await harness.WaitForChangelogAsync(3));
        Assert.Equal(
            $"orders {B} 1 {skipped}|orders {A} 2 {skipped}",
            await harness.ScalarAsync<string>(
                "SELECT string_agg(table_name || ' ' || record_id || ' ' || operation || ' ' || substring(error_text from 'committed at ([0-9A-F/]+)'), '|' ORDER BY id) FROM sync_rule_failures"));
        Assert.Equal(0, await harness.ScalarAsync<long>("SELECT count(*) FROM sync_rule_failures WHERE payload IS NULL OR error_text NOT LIKE '%skip --lsn%'"));
        Assert.Equal(0, await harness.ScalarAsync<long>("SELECT count(*) FROM sync_transaction_skips"));
        // The edges stay where the changelog left them: alice's order is still hers until replay-failures applies the skipped update.
        Assert.Equal($"{A} user:alice|{D} user:dave|{E} user:erin", await harness.ScalarAsync<string>(
            "SELECT string_agg(record_id || ' ' || bucket_id, '|' ORDER BY record_id) FROM sync_bucket_edges"));
        Assert.Contains(logs.Entries, e => e is { EventId.Id: 1015, Level: LogLevel.Warning } && e.Message.Contains(skipped.ToString(), StringComparison.Ordinal));
        Assert.Contains(logs.Entries, e => e is { EventId.Id: 3004, Level: LogLevel.Warning } && e.Message.Contains($"committed at {skipped}", StringComparison.Ordinal)
            && e.Message.Contains("2 change(s) kept", StringComparison.Ordinal));
    }

    [Fact]
    public async Task The_error_that_stops_the_pipeline_names_the_lsn_to_skip_and_skipping_it_lets_the_pipeline_go_on()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "skip_undecodable");
        await harness.StartAsync();
        await harness.ExecuteAsync("INSERT INTO categories VALUES (1, 'a')");
        await harness.WaitForChangelogAsync(1);

        // A transaction whose row arrives without the registered id column: it cannot be decoded under the registration.
        await harness.ExecuteAsync("""
            BEGIN;
            ALTER TABLE categories RENAME COLUMN id TO key;
            INSERT INTO categories VALUES (2, 'b');
            ALTER TABLE categories RENAME COLUMN key TO id;
            COMMIT;
            """);
        await harness.ExecuteAsync("INSERT INTO categories VALUES (3, 'c')");
        var error = await Assert.ThrowsAsync<WalPipelineException>(() => harness.Running.WaitAsync(TimeSpan.FromSeconds(30)));
        var named = SkipCommand().Match(error.Message);
        Assert.True(named.Success, error.Message);
        Assert.Equal(["global categories 1 1"], await harness.ChangelogAsync());

        await WalPipeline.SkipTransactionAsync(harness.Options(), Lsn.Parse(named.Groups["lsn"].Value));
        var logs = new RecordingLoggerFactory();
        var options = harness.Options();
        options.LoggerFactory = logs;
        await harness.StartAsync(options);

        Assert.Equal(["global categories 1 1", "global categories 3 1"], await harness.WaitForChangelogAsync(2));
        Assert.Equal(0, await harness.ScalarAsync<long>("SELECT count(*) FROM sync_transaction_skips"));
        Assert.Contains(logs.Entries, e => e is { EventId.Id: 3004 } && e.Message.Contains("0 change(s) kept", StringComparison.Ordinal)
            && e.Message.Contains("1 row(s) that could not be decoded", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_large_streamed_transaction_is_skipped_in_chunks_and_kept_whole_in_the_failures()
    {
        var (before, after) = (StreamedTransactionTests.Uuid(900_001), StreamedTransactionTests.Uuid(900_002));
        await using var harness = await PipelineHarness.CreateAsync(postgres, "skip_streamed");
        await StreamedTransactionTests.LowerDecodingMemoryAsync(harness);
        var options = StreamedTransactionTests.Options(harness);
        await harness.StartAsync(options);
        await harness.ExecuteAsync($"INSERT INTO orders (id, user_id) VALUES ('{before}', 'alice')");
        await harness.WaitForChangelogAsync(1);
        await harness.StopAsync();

        await harness.ExecuteAsync(StreamedTransactionTests.Insert(1, 5_000));
        await harness.ExecuteAsync($"INSERT INTO orders (id, user_id) VALUES ('{after}', 'dave')");
        var skipped = await CommitLsnOfTransactionWithAsync(harness, StreamedTransactionTests.Uuid(1));
        await WalPipeline.SkipTransactionAsync(options, skipped);
        await harness.StartAsync(options);

        Assert.Equal([$"user:alice orders {before} 1", $"user:dave orders {after} 1"], await harness.WaitForChangelogAsync(2));
        Assert.Equal(5_000, await harness.ScalarAsync<long>($"SELECT count(DISTINCT record_id) FROM sync_rule_failures WHERE error_text LIKE '%committed at {skipped}%'"));
        Assert.Equal(5_000, await harness.ScalarAsync<long>("SELECT count(*) FROM sync_rule_failures"));
        Assert.True(harness.Pipeline!.SpillStatistics.ReplayedTransactions >= 1, "the transaction was not streamed");
        Assert.Equal(0, await harness.ScalarAsync<long>("SELECT count(*) FROM sync_transaction_skips"));
    }

    [Fact]
    public async Task A_skip_of_a_transaction_the_pipeline_is_past_is_refused()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "skip_past");
        await harness.StartAsync();
        await harness.ExecuteAsync($"INSERT INTO orders (id, user_id) VALUES ('{A}', 'alice')");
        await harness.WaitForChangelogAsync(1);
        await harness.StopAsync();

        var error = await Assert.ThrowsAsync<ArgumentException>(() => WalPipeline.SkipTransactionAsync(harness.Options(), new Lsn(1)));

        Assert.Contains("is already past 0/1", error.Message, StringComparison.Ordinal);
        Assert.Equal(0, await harness.ScalarAsync<long>("SELECT count(*) FROM sync_transaction_skips"));
    }

    /// <summary>
    /// The commit LSN of the transaction that inserted the row with id <paramref name="id"/>, read from the slot (the
    /// pipeline is stopped): the final LSN of the transaction's pgoutput Begin message (bytes 1–8 after the 'B').
    /// </summary>
    private static async Task<Lsn> CommitLsnOfTransactionWithAsync(PipelineHarness harness, string id)
    {
        // The test server commits without waiting for the WAL flush, and a slot decodes only flushed WAL: flush it.
        await harness.ExecuteAsync("BEGIN; SET LOCAL synchronous_commit = on; SELECT pg_logical_emit_message(true, 'test.flush', ''); COMMIT;");
        var lsn = await harness.ScalarAsync<long>($"""
            WITH c AS (
                SELECT xid, data FROM pg_logical_slot_peek_binary_changes('{harness.Slot}', NULL, NULL,
                    'proto_version', '1', 'publication_names', '{PipelineHarness.Publication}'))
            SELECT ('x' || encode(substring(data from 2 for 8), 'hex'))::bit(64)::bigint FROM c
            WHERE get_byte(data, 0) = 66 AND xid = (SELECT xid FROM c WHERE position(convert_to('{id}', 'UTF8') in data) > 0 LIMIT 1)
            """);
        return new Lsn((ulong)lsn);
    }

    [GeneratedRegex(@"synchro-pipeline skip --lsn (?<lsn>[0-9A-F]+/[0-9A-F]+)")]
    private static partial Regex SkipCommand();
}
