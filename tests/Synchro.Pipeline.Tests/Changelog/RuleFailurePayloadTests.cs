using Synchro.Pipeline.Registry;
using Synchro.Pipeline.Tests.Buckets;
using Synchro.Pipeline.Tests.Infrastructure;
using Synchro.Pipeline.Tests.Pipeline;

namespace Synchro.Pipeline.Tests.Changelog;

/// <summary>
/// Invariant 7 for the rule-failure row itself: it can always be stored, whatever the row holds — a <c>json</c> value
/// <c>jsonb</c> refuses is kept as text, a row larger than 64 KiB keeps the values that fit — so recording a failure never
/// fails the batch.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class RuleFailurePayloadTests(PostgresServerFixture postgres)
{
    [Fact]
    public async Task A_json_value_jsonb_cannot_hold_is_kept_as_text_in_the_failure_of_any_table()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "payload_json");
        await harness.ExecuteAsync("""
            CREATE TABLE events (id int PRIMARY KEY, owner text, meta json, other json);
            ALTER PUBLICATION synchro_pub ADD TABLE events;
            """);
        var options = harness.Options();
        options.Tables = PipelineHarness.Registry().Add(new TableRegistration("events") { OwnerColumn = "owner", SoftDeleteColumn = null, DecodeAllColumns = true });
        await harness.StartAsync(options);

        // The owner is too long for the changelog, and the row's json would fail a jsonb cast.
        await harness.ExecuteAsync("""
            INSERT INTO events VALUES (1, repeat('x', 2000), '{"a": "\u0000"}', '{"fine": true}');
            INSERT INTO events VALUES (2, 'bob', '{}', NULL);
            """);

        Assert.Equal(["user:bob events 2 1"], await harness.WaitForChangelogAsync(1));
        Assert.Equal(
            """{"id": 1, "meta": "{\"a\": \"\\u0000\"}", "other": {"fine": true}, "owner": "xx", "$synchro": {"as_text": ["meta"]}}""",
            await harness.ScalarAsync<string>("SELECT jsonb_set(payload, '{owner}', '\"xx\"')::text FROM sync_rule_failures"));
    }

    [Fact]
    public async Task A_row_larger_than_64_KiB_keeps_the_values_that_fit_and_names_the_others()
    {
        await using var harness = await SqlFunctionRuleTests.CreateAsync(postgres, "payload_large");
        await harness.StartAsync(SqlFunctionRuleTests.Options(harness));

        // doc_buckets raises for the owner 'poison'; the note is 200,000 characters.
        await harness.ExecuteAsync("""
            INSERT INTO docs (id, owner, note, n) SELECT 1, 'poison', string_agg(md5(g::text), ''), 7 FROM generate_series(1, 6250) g;
            INSERT INTO docs (id, owner) VALUES (2, 'alice');
            """);

        Assert.Equal(["user:alice docs 2 1"], await harness.WaitForChangelogAsync(1));
        Assert.Equal(
            """1 poison 7 ["note"] 1 t""",
            await harness.ScalarAsync<string>("""
                SELECT concat_ws(' ', payload->>'id', payload->>'owner', payload->>'n', payload->'$synchro'->'omitted', payload->'$synchro'->'omitted_count',
                    (payload->'$synchro'->>'bytes')::int > 200000)
                FROM sync_rule_failures
                """));
        Assert.True(await harness.ScalarAsync<int>("SELECT octet_length(payload::text) FROM sync_rule_failures") <= 64 * 1024);
        Assert.StartsWith("bucket function doc_buckets failed: owner poison is poison", await harness.ScalarAsync<string>("SELECT error_text FROM sync_rule_failures"), StringComparison.Ordinal);
    }
}
