using Synchro.Pipeline.Maintenance;
using Synchro.Pipeline.Registry;
using Synchro.Pipeline.Tests.Infrastructure;
using Synchro.Pipeline.Tests.Pipeline;

namespace Synchro.Pipeline.Tests.Buckets;

/// <summary>
/// Invariant 7 for values JSON cannot carry: a <c>json</c> column (checked for syntax only) may hold a <c>\u0000</c>
/// escape or an unpaired surrogate escape that <c>jsonb</c> refuses. A function-rule change with one fails alone, with a
/// clear reason, while the rule query runs once for the rest of its batch; the failure keeps the value as text.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class UnstorableJsonTests(PostgresServerFixture postgres)
{
    private const string Reason = "the json value of column meta has a \\u0000 (NUL) or unpaired surrogate escape, which jsonb cannot hold, "
        + "so the bucket function cannot be given the row; the failure's payload keeps the value as text";

    [Fact]
    public async Task A_json_value_jsonb_cannot_hold_fails_only_its_change_and_the_rule_query_runs_once_for_the_others()
    {
        await using var harness = await CreateAsync("json_nul");
        var options = Options(harness);
        await harness.StartAsync(options);

        await harness.ExecuteAsync("""
            BEGIN;
            INSERT INTO jdocs VALUES (1, 'alice', '{"a": 1}');
            INSERT INTO jdocs VALUES (2, 'bob', '{"a": "x\u0000y"}');
            INSERT INTO jdocs VALUES (3, 'carol', '{"k": "\ud800"}');
            INSERT INTO jdocs VALUES (4, 'dora', '{"ok": "\ud83d\ude00", "escaped": "\\u0000"}');
            COMMIT;
            INSERT INTO jdocs VALUES (5, 'erin', NULL);
            """);

        Assert.Equal(["user:alice jdocs 1 1", "user:dora jdocs 4 1", "user:erin jdocs 5 1"], await harness.WaitForChangelogAsync(3));
        Assert.Equal([$"jdocs 2 1 {Reason}", $"jdocs 3 1 {Reason}"], await OverlongIdTests.FailuresAsync(harness));
        // One query for the batch (one transaction id), which never saw the two rows it could not be given.
        Assert.Equal(1L, await harness.ScalarAsync<long>("SELECT count(DISTINCT txid) FROM rule_calls WHERE new_row->>'id' IN ('1', '4')"));
        Assert.Equal(0L, await harness.ScalarAsync<long>("SELECT count(*) FROM rule_calls WHERE new_row->>'id' IN ('2', '3')"));

        // The failure keeps the value as a JSON string of its text, so the escape is itself escaped, and says so.
        Assert.Equal(
            """{"a": "x\u0000y"} ["meta"] bob""",
            await harness.ScalarAsync<string>("SELECT (payload->>'meta') || ' ' || (payload->'$synchro'->'as_text')::text || ' ' || (payload->>'owner') FROM sync_rule_failures WHERE record_id = '2'"));

        // Replay finds the same reason while the value is there, and writes the change once it is fixed.
        await harness.StopAsync();
        var replay = await new RuleFailureReplayer(options).ReplayAsync();
        Assert.Equal((0, 2), (replay.Replayed, replay.StillFailing));
        Assert.All(replay.Failing, f => Assert.Equal(Reason, f.ErrorText));
        await harness.ExecuteAsync("UPDATE jdocs SET meta = '{\"a\": \"xy\"}' WHERE id = 2");
        replay = await new RuleFailureReplayer(options).ReplayAsync();
        Assert.Equal((1, 1), (replay.Replayed, replay.StillFailing));
        Assert.Equal("user:bob jdocs 2 1", (await harness.ChangelogAsync())[^1]);

        // And streaming goes on after it.
        await harness.StartAsync(options);
        await harness.ExecuteAsync("INSERT INTO jdocs VALUES (6, 'frank', '{\"b\": \"\\u0000\"}'), (7, 'gina', '[]')");
        Assert.Equal("user:gina jdocs 7 1", (await harness.WaitForChangelogAsync(6))[^1]);
    }

    private async Task<PipelineHarness> CreateAsync(string name)
    {
        var harness = await SqlFunctionRuleTests.CreateAsync(postgres, name);
        await harness.ExecuteAsync("""
            CREATE TABLE jdocs (id int PRIMARY KEY, owner text, meta json);
            ALTER PUBLICATION synchro_pub ADD TABLE jdocs;
            """);
        return harness;
    }

    private static WalPipelineOptions Options(PipelineHarness harness)
    {
        var options = harness.Options();
        options.Tables = PipelineHarness.Registry().Add(new TableRegistration("jdocs") { BucketFunction = "doc_buckets", SoftDeleteColumn = null });
        return options;
    }
}
