using Synchro.Pipeline.Tests.Infrastructure;

namespace Synchro.Pipeline.Tests.Pipeline;

/// <summary>
/// The writer's backstop for invariant 7: a change the changelog database refuses while a batch is written (SQLSTATE
/// class 22, 23 or 54 — here forced by a CHECK constraint and a trigger the test adds to the sidecar tables) becomes a
/// rule failure with the server's reason, and everything around it is written once, in order, with the edges right.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class RefusedChangeTests(PostgresServerFixture postgres)
{
    private const string RefuseBadBucket = "ALTER TABLE sync_changelog ADD CONSTRAINT refuse_bad CHECK (bucket_id <> 'user:bad')";

    // Edges are written after the changelog rows of their part: refusing one undoes the part's changelog rows too.
    private const string RefuseEdges = """
        CREATE FUNCTION refuse_edge() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF NEW.bucket_id = 'user:edge22' THEN RAISE EXCEPTION 'edge % refused', NEW.bucket_id USING ERRCODE = 'invalid_parameter_value'; END IF;
          IF NEW.bucket_id = 'user:edge23' THEN RAISE EXCEPTION 'edge % refused', NEW.bucket_id USING ERRCODE = 'check_violation'; END IF;
          IF NEW.bucket_id = 'user:edge54' THEN RAISE EXCEPTION 'edge % refused', NEW.bucket_id USING ERRCODE = 'program_limit_exceeded'; END IF;
          IF NEW.bucket_id = 'user:fatal' THEN RAISE EXCEPTION 'edge % refused', NEW.bucket_id; END IF;
          RETURN NEW;
        END $$;
        CREATE TRIGGER refuse_edge BEFORE INSERT ON sync_bucket_edges FOR EACH ROW EXECUTE FUNCTION refuse_edge();
        """;

    [Fact]
    public async Task A_change_the_changelog_refuses_becomes_a_rule_failure_and_later_changes_of_its_record_see_the_edges_without_it()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "refused_check");
        await harness.StartAsync();
        await harness.ExecuteAsync($"INSERT INTO orders (id, user_id) VALUES ('{Id(1)}', 'alice')");
        await harness.WaitForChangelogAsync(1);
        await harness.ExecuteAsync(RefuseBadBucket);

        await harness.ExecuteAsync($"""
            INSERT INTO orders (id, user_id) VALUES ('{Id(2)}', 'bob');
            BEGIN;
            INSERT INTO orders (id, user_id) VALUES ('{Id(3)}', 'carol');
            UPDATE orders SET user_id = 'bad' WHERE id = '{Id(1)}';
            UPDATE orders SET user_id = 'dave' WHERE id = '{Id(1)}';
            INSERT INTO orders (id, user_id) VALUES ('{Id(4)}', 'bad');
            INSERT INTO orders (id, user_id) VALUES ('{Id(5)}', 'erin');
            COMMIT;
            INSERT INTO orders (id, user_id) VALUES ('{Id(6)}', 'frank');
            """);

        // The move to 'bad' never happened for the changelog: the next move of the record leaves alice, not bad.
        Assert.Equal(
        [
            $"user:alice orders {Id(1)} 1",
            $"user:bob orders {Id(2)} 1",
            $"user:carol orders {Id(3)} 1",
            $"user:dave orders {Id(1)} 1", $"user:alice orders {Id(1)} 3",
            $"user:erin orders {Id(5)} 1",
            $"user:frank orders {Id(6)} 1",
        ], await harness.WaitForChangelogAsync(7));
        Assert.Equal(
        [
            $"orders {Id(1)} 2 the changelog refused the change (23514): new row for relation \"sync_changelog\" violates check constraint \"refuse_bad\"",
            $"orders {Id(4)} 1 the changelog refused the change (23514): new row for relation \"sync_changelog\" violates check constraint \"refuse_bad\"",
        ], await OverlongIdTests.FailuresAsync(harness));
        Assert.Equal("bad", await harness.ScalarAsync<string>($"SELECT payload->>'user_id' FROM sync_rule_failures WHERE record_id = '{Id(4)}'"));
        Assert.Equal(
            [$"{Id(1)} user:dave", $"{Id(2)} user:bob", $"{Id(3)} user:carol", $"{Id(5)} user:erin", $"{Id(6)} user:frank"],
            await OverlongIdTests.Rows(harness, "SELECT record_id || ' ' || bucket_id FROM sync_bucket_edges ORDER BY record_id"));

        // Streaming goes on.
        await harness.ExecuteAsync($"INSERT INTO orders (id, user_id) VALUES ('{Id(7)}', 'gina')");
        Assert.Equal($"user:gina orders {Id(7)} 1", (await harness.WaitForChangelogAsync(8))[^1]);
        Assert.Equal(2L, harness.Pipeline!.GetStatus().RuleFailures);
    }

    [Fact]
    public async Task Refusals_of_classes_22_23_and_54_while_edges_are_written_undo_their_changes_rows_and_only_theirs()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "refused_edges");
        await harness.StartAsync();
        await harness.ExecuteAsync(RefuseEdges);

        await harness.ExecuteAsync($"""
            BEGIN;
            INSERT INTO orders (id, user_id) VALUES ('{Id(1)}', 'alice');
            INSERT INTO orders (id, user_id) VALUES ('{Id(2)}', 'edge22');
            INSERT INTO orders (id, user_id) VALUES ('{Id(3)}', 'bob');
            INSERT INTO orders (id, user_id) VALUES ('{Id(4)}', 'edge23');
            INSERT INTO orders (id, user_id) VALUES ('{Id(5)}', 'edge54');
            INSERT INTO orders (id, user_id) VALUES ('{Id(6)}', 'carol');
            COMMIT;
            """);

        Assert.Equal(
            [$"user:alice orders {Id(1)} 1", $"user:bob orders {Id(3)} 1", $"user:carol orders {Id(6)} 1"],
            await harness.WaitForChangelogAsync(3));
        Assert.Equal(
        [
            $"orders {Id(2)} 1 the changelog refused the change (22023): edge user:edge22 refused",
            $"orders {Id(4)} 1 the changelog refused the change (23514): edge user:edge23 refused",
            $"orders {Id(5)} 1 the changelog refused the change (54000): edge user:edge54 refused",
        ], await OverlongIdTests.FailuresAsync(harness));
        Assert.Equal(3L, await harness.ScalarAsync<long>("SELECT count(*) FROM sync_bucket_edges"));

        await harness.ExecuteAsync($"INSERT INTO orders (id, user_id) VALUES ('{Id(7)}', 'dave')");
        Assert.Equal($"user:dave orders {Id(7)} 1", (await harness.WaitForChangelogAsync(4))[^1]);
    }

    [Fact]
    public async Task A_refused_change_in_a_transaction_written_in_chunks_leaves_the_chunks_before_it()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "refused_chunked");
        await harness.StartAsync(harness.Options(maxBatchRows: 10));
        await harness.ExecuteAsync("ALTER TABLE sync_changelog ADD CONSTRAINT refuse_17 CHECK (record_id <> '17')");

        await harness.ExecuteAsync("INSERT INTO categories SELECT g, 'c' || g FROM generate_series(1, 35) g");

        var rows = await harness.WaitForChangelogAsync(34);
        Assert.Equal([.. Enumerable.Range(1, 35).Where(i => i != 17).Select(i => $"global categories {i} 1")], rows);
        Assert.Equal(
            ["categories 17 1 the changelog refused the change (23514): new row for relation \"sync_changelog\" violates check constraint \"refuse_17\""],
            await OverlongIdTests.FailuresAsync(harness));
    }

    [Fact]
    public async Task Refused_changes_of_a_prepared_transaction_read_back_in_batches_leave_the_batches_around_them()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "refused_prepared");
        var options = harness.Options(maxBatchRows: 10);
        options.TwoPhase = true;
        await harness.StartAsync(options);
        await harness.ExecuteAsync("ALTER TABLE sync_changelog ADD CONSTRAINT refuse_17_23 CHECK (record_id NOT IN ('17', '23'))");

        // Read back at COMMIT PREPARED in batches of 10, all in the transaction of its position.
        await harness.ExecuteAsync("BEGIN; INSERT INTO categories SELECT g, 'c' || g FROM generate_series(1, 35) g; PREPARE TRANSACTION 'refused';");
        await harness.ExecuteAsync("COMMIT PREPARED 'refused'");
        await harness.ExecuteAsync("INSERT INTO categories VALUES (36, 'after')");

        var rows = await harness.WaitForChangelogAsync(34);
        Assert.Equal([.. Enumerable.Range(1, 36).Where(i => i is not (17 or 23)).Select(i => $"global categories {i} 1")], rows);
        Assert.Equal(["categories 17 1", "categories 23 1"], (await OverlongIdTests.FailuresAsync(harness)).Select(f => f[..f.IndexOf(" the ", StringComparison.Ordinal)]));
        Assert.Equal(0L, await harness.ScalarAsync<long>("SELECT count(*) FROM sync_prepared_transactions"));
    }

    [Fact]
    public async Task An_error_of_another_class_still_stops_the_pipeline_and_nothing_of_its_batch_is_written()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "refused_fatal");
        await harness.StartAsync();
        await harness.ExecuteAsync(RefuseEdges);

        await harness.ExecuteAsync($"""
            BEGIN;
            INSERT INTO orders (id, user_id) VALUES ('{Id(1)}', 'alice');
            INSERT INTO orders (id, user_id) VALUES ('{Id(2)}', 'fatal');
            COMMIT;
            """);

        var error = await Assert.ThrowsAnyAsync<Exception>(() => harness.Running.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Contains("edge user:fatal refused", error.ToString(), StringComparison.Ordinal);
        Assert.Empty(await harness.ChangelogAsync());
        Assert.Empty(await OverlongIdTests.FailuresAsync(harness));
    }

    private static string Id(int n) => $"00000000-0000-0000-0000-{n:D12}";
}
