using Synchro.Pipeline.Maintenance;
using Synchro.Pipeline.Registry;
using Synchro.Pipeline.Tests.Infrastructure;

namespace Synchro.Pipeline.Tests.Pipeline;

/// <summary>
/// Invariant 7 for ids longer than the changelog's indexes hold (<see cref="WalPipelineOptions.MaxBucketIdBytes"/>,
/// <see cref="WalPipelineOptions.MaxRecordIdBytes"/>): the change becomes a rule failure naming the length and the limit,
/// and everything around it — the rows before and after it in its transaction, the transactions before and after it —
/// is written once, in order; streaming, the initial snapshot and replay go on.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class OverlongIdTests(PostgresServerFixture postgres)
{
    // 8,000 characters of md5 hex: an owner an index entry cannot hold (the 8 KB value).
    private const string LongOwner = "(SELECT string_agg(md5(g::text), '') FROM generate_series(1, 250) g)";

    private const string BucketTooLong = "is 8,005 bytes, more than the 1,024 the changelog takes (MaxBucketIdBytes)";

    [Fact]
    public async Task An_owner_too_long_for_the_changelog_fails_its_change_and_the_rows_around_it_are_written_once()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "overlong_owner");
        await harness.StartAsync();

        // One round trip: the transaction before the poison one is most likely in the same batch.
        await harness.ExecuteAsync($"""
            INSERT INTO orders (id, user_id) VALUES ('{Id(1)}', 'alice');
            BEGIN;
            INSERT INTO orders (id, user_id) VALUES ('{Id(2)}', 'bob');
            INSERT INTO orders (id, user_id) VALUES ('{Id(3)}', {LongOwner});
            INSERT INTO orders (id, user_id) VALUES ('{Id(4)}', 'carol');
            COMMIT;
            INSERT INTO orders (id, user_id) VALUES ('{Id(5)}', 'dave');
            """);
        Assert.Equal(
            [$"user:alice orders {Id(1)} 1", $"user:bob orders {Id(2)} 1", $"user:carol orders {Id(4)} 1", $"user:dave orders {Id(5)} 1"],
            await harness.WaitForChangelogAsync(4));

        // The record that failed has no edges; one whose move failed keeps its bucket, so its delete still leaves it.
        await harness.ExecuteAsync($"UPDATE orders SET user_id = 'erin' WHERE id = '{Id(3)}'");
        await harness.ExecuteAsync($"UPDATE orders SET user_id = {LongOwner} WHERE id = '{Id(1)}'");
        await harness.ExecuteAsync($"DELETE FROM orders WHERE id = '{Id(1)}'");
        await harness.ExecuteAsync($"INSERT INTO orders (id, user_id) VALUES ('{Id(6)}', 'frank')");
        Assert.Equal(
        [
            $"user:alice orders {Id(1)} 1", $"user:bob orders {Id(2)} 1", $"user:carol orders {Id(4)} 1", $"user:dave orders {Id(5)} 1",
            $"user:erin orders {Id(3)} 1", $"user:alice orders {Id(1)} 3", $"user:frank orders {Id(6)} 1",
        ], await harness.WaitForChangelogAsync(7));

        var failures = await FailuresAsync(harness);
        Assert.Equal(2, failures.Count);
        Assert.StartsWith($"orders {Id(3)} 1 bucket id 'user:c4ca4238a0b923820dcc509a6f75849bc81…' {BucketTooLong}", failures[0], StringComparison.Ordinal);
        Assert.StartsWith($"orders {Id(1)} 2 bucket id 'user:c4ca4238a0b923820dcc509a6f75849bc81…' {BucketTooLong}", failures[1], StringComparison.Ordinal);
        Assert.Equal(8_000, await harness.ScalarAsync<int>("SELECT length(payload->>'user_id') FROM sync_rule_failures ORDER BY id LIMIT 1"));
        Assert.Equal(2L, harness.Pipeline!.GetStatus().RuleFailures);
        Assert.Equal(WalPipelineState.Running, harness.Pipeline.GetStatus().State);
    }

    [Fact]
    public async Task A_record_id_too_long_for_the_changelog_fails_its_change_before_its_rule_runs()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "overlong_record");
        // The id must be unique, so it has a primary key; the long id below is compressible, which the source's index
        // holds compressed, while the changelog's limit counts its bytes (it must not count on compression).
        await harness.ExecuteAsync("""
            CREATE TABLE tags (id text PRIMARY KEY, owner text);
            ALTER PUBLICATION synchro_pub ADD TABLE tags;
            """);
        var options = harness.Options();
        options.Tables = PipelineHarness.Registry().Add(new TableRegistration("tags") { OwnerColumn = "owner", SoftDeleteColumn = null });
        await harness.StartAsync(options);

        await harness.ExecuteAsync("""
            BEGIN;
            INSERT INTO tags VALUES ('a', 'alice');
            INSERT INTO tags SELECT repeat(md5('1'), 100), 'alice';
            INSERT INTO tags VALUES ('b', 'bob');
            COMMIT;
            INSERT INTO tags VALUES ('c', 'carol');
            """);

        Assert.Equal(["user:alice tags a 1", "user:bob tags b 1", "user:carol tags c 1"], await harness.WaitForChangelogAsync(3));
        var failure = Assert.Single(await FailuresAsync(harness));
        Assert.StartsWith("tags c4ca4238a0b923820dcc509a6f75849b", failure, StringComparison.Ordinal);
        Assert.Contains(" 1 record id 'c4ca4238a0b923820dcc509a6f75849bc4ca4238…' is 3,200 bytes, more than the 1,024 the changelog takes (MaxRecordIdBytes)", failure, StringComparison.Ordinal);

        // The limit is an option: raised, the same id is written.
        await harness.StopAsync();
        options.MaxRecordIdBytes = 2_000;
        options.MaxBucketIdBytes = 556;
        await harness.ExecuteAsync("INSERT INTO tags SELECT left(string_agg(md5(g::text), ''), 1990), 'dora' FROM generate_series(1, 100) g");
        await harness.StartAsync(options);
        var rows = await harness.WaitForChangelogAsync(4);
        Assert.StartsWith("user:dora tags c4ca4238", rows[3], StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_initial_snapshot_records_an_overlong_owner_as_a_failed_insert_and_completes()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "overlong_snapshot");
        await harness.ExecuteAsync($"""
            INSERT INTO orders (id, user_id) VALUES ('{Id(1)}', 'alice'), ('{Id(2)}', 'bob');
            INSERT INTO orders (id, user_id) VALUES ('{Id(3)}', {LongOwner});
            """);

        await harness.StartAsync();

        Assert.Equal(
            [$"orders {Id(1)} user:alice", $"orders {Id(2)} user:bob"],
            await Rows(harness, "SELECT table_name || ' ' || record_id || ' ' || bucket_id FROM sync_bucket_edges ORDER BY record_id"));
        var failure = Assert.Single(await FailuresAsync(harness));
        Assert.StartsWith($"orders {Id(3)} 1 bucket id 'user:c4ca4238", failure, StringComparison.Ordinal);
        Assert.Contains(BucketTooLong, failure, StringComparison.Ordinal);

        // Streaming goes on from the snapshot: alice's order leaves her bucket, which the loaded edge proves.
        await harness.ExecuteAsync($"UPDATE orders SET user_id = 'carol' WHERE id = '{Id(1)}'");
        Assert.Equal([$"user:carol orders {Id(1)} 1", $"user:alice orders {Id(1)} 3"], await harness.WaitForChangelogAsync(2));
    }

    [Fact]
    public async Task Replay_keeps_an_overlong_owner_failing_with_its_reason_and_writes_it_once_it_fits()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "overlong_replay");
        var options = harness.Options();
        await harness.StartAsync(options);
        await harness.ExecuteAsync($"INSERT INTO orders (id, user_id) VALUES ('{Id(1)}', {LongOwner})");
        await harness.ExecuteAsync($"INSERT INTO orders (id, user_id) VALUES ('{Id(2)}', 'bob')");
        await harness.WaitForChangelogAsync(1);
        await harness.StopAsync();

        var replay = await new RuleFailureReplayer(options).ReplayAsync();
        Assert.Equal((0, 1), (replay.Replayed, replay.StillFailing));
        Assert.Contains(BucketTooLong, Assert.Single(replay.Failing).ErrorText, StringComparison.Ordinal);

        // Fixed at the source (the pipeline is stopped, so the row's later change is not written yet): replay writes it.
        await harness.ExecuteAsync($"UPDATE orders SET user_id = 'alice' WHERE id = '{Id(1)}'");
        replay = await new RuleFailureReplayer(options).ReplayAsync();
        Assert.Equal((1, 0), (replay.Replayed, replay.StillFailing));
        Assert.Equal([$"user:bob orders {Id(2)} 1", $"user:alice orders {Id(1)} 1"], await harness.ChangelogAsync());
        Assert.Empty(await FailuresAsync(harness));
    }

    private static string Id(int n) => $"00000000-0000-0000-0000-{n:D12}";

    internal static Task<List<string>> FailuresAsync(PipelineHarness harness)
        => Rows(harness, "SELECT table_name || ' ' || record_id || ' ' || operation || ' ' || error_text FROM sync_rule_failures ORDER BY id");

    internal static Task<List<string>> Rows(PipelineHarness harness, string sql) => Sql.RowsAsync(harness.ConnectionString, sql);
}
