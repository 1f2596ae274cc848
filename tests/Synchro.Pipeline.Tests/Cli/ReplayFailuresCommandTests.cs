using System.Text.Json;
using Synchro.Pipeline.Registry;
using Synchro.Pipeline.Tests.Infrastructure;
using Synchro.Pipeline.Tests.Pipeline;

namespace Synchro.Pipeline.Tests.Cli;

/// <summary>
/// <c>synchro-pipeline replay-failures</c> after a bucket function is fixed, while the pipeline keeps running: failures
/// replayed from the record's current row, one superseded by the record's deletion, one failing again and kept.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class ReplayFailuresCommandTests(PostgresServerFixture postgres)
{
    private const string Rule = """
        CREATE OR REPLACE FUNCTION replay_rule(table_name text, operation text, new_row jsonb, old_row jsonb) RETURNS SETOF text LANGUAGE plpgsql AS $$
        BEGIN
          IF new_row->>'owner' LIKE '{0}' THEN RAISE EXCEPTION 'no rule for %', new_row->>'owner'; END IF;
          RETURN NEXT 'user:' || (new_row->>'owner');
        END $$;
        """;

    [Fact]
    public async Task Replay_writes_the_fixed_rules_rows_drops_superseded_failures_and_keeps_the_ones_still_failing()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "cli_replay");
        await harness.ExecuteAsync("""
            CREATE TABLE docs (id int PRIMARY KEY, owner text, deleted_at timestamptz);
            ALTER PUBLICATION synchro_pub ADD TABLE docs;
            """ + Rule.Replace("{0}", "bad%", StringComparison.Ordinal));
        var options = harness.Options();
        options.Tables = new TableRegistry().Add(new TableRegistration("docs") { BucketFunction = "replay_rule" });
        await harness.StartAsync(options);

        await harness.ExecuteAsync("INSERT INTO docs VALUES (1, 'bad1', NULL), (2, 'alice', NULL)");
        await harness.ExecuteAsync("INSERT INTO docs VALUES (3, 'bad3', NULL)");
        await harness.ExecuteAsync("UPDATE docs SET owner = 'carol' WHERE id = 3");
        await harness.ExecuteAsync("INSERT INTO docs VALUES (4, 'bad4', NULL)");
        await harness.ExecuteAsync("UPDATE docs SET deleted_at = now(), owner = 'dora' WHERE id = 4");
        await harness.ExecuteAsync("DELETE FROM docs WHERE id = 4");
        await harness.ExecuteAsync("INSERT INTO docs VALUES (6, 'bad6', NULL)");
        await harness.ExecuteAsync("INSERT INTO docs VALUES (7, 'eve', NULL)");
        string[] before = ["user:alice docs 2 1", "user:carol docs 3 1", "user:dora docs 4 3", "user:eve docs 7 1"];
        Assert.Equal(before, await harness.WaitForChangelogAsync(4));
        Assert.Equal("1 3 4 6", await harness.ScalarAsync<string>("SELECT string_agg(record_id, ' ' ORDER BY id) FROM sync_rule_failures"));

        using var directory = new WorkingDirectory();
        var config = directory.WriteFile(JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["Synchro"] = new Dictionary<string, object>
            {
                ["ConnectionString"] = harness.ConnectionString,
                ["Tables"] = new Dictionary<string, object> { ["docs"] = new Dictionary<string, object> { ["BucketFunction"] = "replay_rule" } },
            },
        }), "pipeline.json");

        // The fix covers every owner but bad6.
        await harness.ExecuteAsync(Rule.Replace("{0}", "bad6", StringComparison.Ordinal));
        var first = await CliProcess.RunInAsync(directory.Path, null, "replay-failures", "--config", config, "--chunk-size", "2");
        Assert.True(first.ExitCode == 8, first.ToString());
        Assert.Contains("2 replayed (2 changelog rows), 1 superseded by later changes, 1 still failing", first.Output, StringComparison.Ordinal);
        Assert.Matches(@"#\d+ docs 6: bucket function replay_rule failed: no rule for bad6", first.Output);

        // Docs 1 enters its bucket; docs 3 is replayed from its current row (carol), not the recorded one (bad3); docs 4 is gone.
        Assert.Equal([.. before, "user:bad1 docs 1 1", "user:carol docs 3 2"], await harness.ChangelogAsync());
        Assert.Equal("docs 1 user:bad1,docs 2 user:alice,docs 3 user:carol,docs 7 user:eve", await harness.ScalarAsync<string>(
            "SELECT string_agg(table_name || ' ' || record_id || ' ' || bucket_id, ',' ORDER BY record_id) FROM sync_bucket_edges"));
        Assert.Equal("6 1 bucket function replay_rule failed: no rule for bad6", await harness.ScalarAsync<string>(
            "SELECT string_agg(record_id || ' ' || operation || ' ' || error_text, ',') FROM sync_rule_failures"));

        // Fixed for good: the last failure replays, the table is empty, and the pipeline went on meanwhile.
        await harness.ExecuteAsync(Rule.Replace("{0}", "no owner matches this", StringComparison.Ordinal));
        var second = await CliProcess.RunInAsync(directory.Path, null, "replay-failures", "--config", config);
        Assert.True(second.ExitCode == 0, second.ToString());
        Assert.Contains("1 replayed (1 changelog rows), 0 superseded by later changes, 0 still failing", second.Output, StringComparison.Ordinal);
        await harness.ExecuteAsync("INSERT INTO docs VALUES (8, 'frank', NULL)");
        Assert.Equal([.. before, "user:bad1 docs 1 1", "user:carol docs 3 2", "user:bad6 docs 6 1", "user:frank docs 8 1"], await harness.WaitForChangelogAsync(8));
        Assert.Equal(0L, await harness.ScalarAsync<long>("SELECT count(*) FROM sync_rule_failures"));
    }
}
