using Synchro.Pipeline.Buckets;
using Synchro.Pipeline.Registry;
using Synchro.Pipeline.Tests.Infrastructure;
using Synchro.Pipeline.Tests.Pipeline;

namespace Synchro.Pipeline.Tests.Buckets;

/// <summary>SQL function bucket rules, custom assigners and their failures, end to end through a real slot.</summary>
[Collection(PostgresCollection.Name)]
public sealed class SqlFunctionRuleTests(PostgresServerFixture postgres)
{
    /// <summary>A table with every kind of value, and a function that records what it was given (one txid per query).</summary>
    internal const string Schema = """
        CREATE TABLE docs (id int PRIMARY KEY, owner text, n int, price numeric, ratio float8, flag boolean, meta jsonb, note text, deleted_at timestamptz);
        ALTER TABLE docs REPLICA IDENTITY FULL;
        CREATE TABLE notes (id int PRIMARY KEY, owner text, body text);
        CREATE TABLE fullnotes (id int PRIMARY KEY, owner text, body text);
        ALTER TABLE fullnotes REPLICA IDENTITY FULL;
        ALTER PUBLICATION synchro_pub ADD TABLE docs, notes, fullnotes;
        CREATE TABLE rule_calls (txid bigint, table_name text, operation text, new_row jsonb, old_row jsonb);
        CREATE FUNCTION doc_buckets(table_name text, operation text, new_row jsonb, old_row jsonb) RETURNS SETOF text LANGUAGE plpgsql AS $$
        BEGIN
          INSERT INTO rule_calls VALUES (txid_current(), table_name, operation, new_row, old_row);
          IF new_row->>'owner' = 'poison' THEN RAISE EXCEPTION 'owner % is poison', new_row->>'owner'; END IF;
          RETURN NEXT 'user:' || (new_row->>'owner');
          IF jsonb_typeof(new_row->'n') = 'number' THEN RETURN NEXT 'n:' || ((new_row->>'n')::int + 1); END IF;
          IF new_row->>'owner' = 'crowd' THEN RETURN QUERY SELECT 'fan:' || g FROM generate_series(1, 3) g; END IF;
        END $$;
        CREATE FUNCTION rules.global_rule(table_name text, operation text, new_row jsonb, old_row jsonb) RETURNS SETOF text LANGUAGE sql AS $$
          SELECT table_name || ':' || coalesce(new_row->>'name', new_row->>'user_id')
        $$;
        CREATE FUNCTION note_buckets(table_name text, operation text, new_row jsonb, old_row jsonb) RETURNS SETOF text LANGUAGE sql AS $$
          VALUES ('user:' || (new_row->>'owner')), ('len:' || coalesce(length(new_row->>'body')::text, 'none'))
        $$;
        CREATE FUNCTION not_a_set(table_name text, operation text, new_row jsonb, old_row jsonb) RETURNS text LANGUAGE sql AS $$ SELECT 'x' $$;
        """;

    internal static async Task<PipelineHarness> CreateAsync(PostgresServerFixture postgres, string name)
    {
        var harness = await PipelineHarness.CreateAsync(postgres, name);
        await harness.ExecuteAsync("CREATE SCHEMA rules;" + Schema);
        return harness;
    }

    internal static WalPipelineOptions Options(PipelineHarness harness, string? global = null, IBucketAssigner? assigner = null)
    {
        var options = harness.Options(assigner);
        options.Tables = PipelineHarness.Registry()
            .Add(new TableRegistration("docs") { BucketFunction = "doc_buckets" })
            .Add(new TableRegistration("notes") { BucketFunction = "public.note_buckets", SoftDeleteColumn = null })
            .Add(new TableRegistration("fullnotes") { BucketFunction = "note_buckets", SoftDeleteColumn = null });
        options.Tables.GlobalBucketFunction = global;
        return options;
    }

    [Fact]
    public async Task A_tables_function_gets_typed_rows_once_per_batch_and_its_buckets_reach_the_changelog()
    {
        await using var harness = await CreateAsync(postgres, "fn_table");
        await harness.StartAsync(Options(harness));

        await harness.ExecuteAsync("""
            BEGIN;
            INSERT INTO docs VALUES (1, 'alice', 41, 9.50, 0.5, true, '{"a": [1, 2]}', 'x', NULL);
            INSERT INTO docs VALUES (2, 'bob', NULL, NULL, 'NaN', false, NULL, NULL, NULL);
            INSERT INTO categories VALUES (5, 'books');
            COMMIT;
            """);
        Assert.Equal(["user:alice docs 1 1", "n:42 docs 1 1", "user:bob docs 2 1", "global categories 5 1"], await harness.WaitForChangelogAsync(4));

        // One query for the batch: every call ran in the same (autocommit) transaction.
        Assert.Equal(1L, await harness.ScalarAsync<long>("SELECT count(DISTINCT txid) FROM rule_calls"));
        Assert.True(await harness.ScalarAsync<bool>("""
            SELECT new_row = '{"id": 1, "owner": "alice", "n": 41, "price": 9.50, "ratio": 0.5, "flag": true, "meta": {"a": [1, 2]}, "note": "x", "deleted_at": null}'::jsonb
                AND old_row IS NULL AND operation = 'create' AND table_name = 'docs'
            FROM rule_calls WHERE new_row->>'id' = '1'
            """));
        Assert.Equal("number number boolean object string null", await harness.ScalarAsync<string>("""
            SELECT concat_ws(' ', jsonb_typeof(new_row->'n'), jsonb_typeof(new_row->'price'), jsonb_typeof(new_row->'flag'),
                jsonb_typeof(new_row->'meta'), jsonb_typeof(new_row->'note'), jsonb_typeof(new_row->'deleted_at'))
            FROM rule_calls WHERE new_row->>'id' = '1'
            """));
        Assert.Equal("null string boolean", await harness.ScalarAsync<string>(
            "SELECT concat_ws(' ', jsonb_typeof(new_row->'n'), jsonb_typeof(new_row->'ratio'), jsonb_typeof(new_row->'flag')) FROM rule_calls WHERE new_row->>'id' = '2'"));

        await harness.ExecuteAsync("UPDATE docs SET owner = 'carol' WHERE id = 1");
        await harness.ExecuteAsync("DELETE FROM docs WHERE id = 2");
        Assert.Equal(
        [
            "user:alice docs 1 1", "n:42 docs 1 1", "user:bob docs 2 1", "global categories 5 1",
            "user:carol docs 1 1", "n:42 docs 1 2", "user:alice docs 1 3",
            "user:bob docs 2 3",
        ], await harness.WaitForChangelogAsync(8));
        Assert.Equal("update alice carol", await harness.ScalarAsync<string>(
            "SELECT operation || ' ' || (old_row->>'owner') || ' ' || (new_row->>'owner') FROM rule_calls WHERE new_row->>'id' = '1' AND operation <> 'create'"));
        Assert.Equal("delete bob bob", await harness.ScalarAsync<string>(
            "SELECT operation || ' ' || (old_row->>'owner') || ' ' || (new_row->>'owner') FROM rule_calls WHERE new_row->>'id' = '2' AND operation <> 'create'"));
    }

    [Fact]
    public async Task The_global_function_decides_every_table_without_a_function_of_its_own()
    {
        await using var harness = await CreateAsync(postgres, "fn_global");
        await harness.StartAsync(Options(harness, global: "rules.global_rule"));

        await harness.ExecuteAsync("""
            BEGIN;
            INSERT INTO categories VALUES (5, 'books');
            INSERT INTO orders (id, user_id) VALUES ('00000000-0000-0000-0000-000000000001', 'alice');
            INSERT INTO docs VALUES (1, 'dora', NULL, NULL, NULL, NULL, NULL, NULL, NULL);
            COMMIT;
            """);

        // The global function overrides the orders table's owner column (the reference's precedence); docs keeps its own.
        Assert.Equal(
            ["categories:books categories 5 1", "orders:alice orders 00000000-0000-0000-0000-000000000001 1", "user:dora docs 1 1"],
            await harness.WaitForChangelogAsync(3));
    }

    [Fact]
    public async Task An_unchanged_toast_value_is_read_from_the_source_row_so_the_function_sees_it()
    {
        await using var harness = await CreateAsync(postgres, "fn_toast");
        await harness.StartAsync(Options(harness));

        // 8,000 characters of md5 text do not compress below the TOAST threshold, so the column is stored out of line.
        await harness.ExecuteAsync("INSERT INTO notes SELECT 1, 'alice', string_agg(md5(g::text), '') FROM generate_series(1, 250) g");
        await harness.ExecuteAsync("UPDATE notes SET owner = 'bob' WHERE id = 1");

        Assert.Equal(
            ["user:alice notes 1 1", "len:8000 notes 1 1", "user:bob notes 1 1", "len:8000 notes 1 2", "user:alice notes 1 3"],
            await harness.WaitForChangelogAsync(5));
    }

    [Fact]
    public async Task An_unchanged_toast_value_is_taken_from_the_old_row_when_the_server_sends_one()
    {
        await using var harness = await CreateAsync(postgres, "fn_toast_old");
        await harness.StartAsync(Options(harness));

        await harness.ExecuteAsync("INSERT INTO fullnotes SELECT 1, 'alice', string_agg(md5(g::text), '') FROM generate_series(1, 250) g");
        // The row is gone before the pipeline could read it back: only the old row (REPLICA IDENTITY FULL) has the body.
        await harness.ExecuteAsync("BEGIN; UPDATE fullnotes SET owner = 'bob' WHERE id = 1; DELETE FROM fullnotes WHERE id = 1; COMMIT;");

        Assert.Equal(
        [
            "user:alice fullnotes 1 1", "len:8000 fullnotes 1 1",
            "user:bob fullnotes 1 1", "len:8000 fullnotes 1 2", "user:alice fullnotes 1 3",
            "user:bob fullnotes 1 3", "len:8000 fullnotes 1 3",
        ], await harness.WaitForChangelogAsync(7));
    }

    [Fact]
    public async Task A_function_error_fails_only_the_rows_that_cause_it_and_an_oversized_fan_out_is_rejected()
    {
        await using var harness = await CreateAsync(postgres, "fn_failures");
        var options = Options(harness);
        options.MaxBucketsPerChange = 3;
        await harness.StartAsync(options);

        await harness.ExecuteAsync("""
            BEGIN;
            INSERT INTO docs (id, owner) VALUES (1, 'alice'), (2, 'poison'), (3, 'bob'), (4, 'crowd'), (5, 'carol');
            COMMIT;
            """);
        Assert.Equal(["user:alice docs 1 1", "user:bob docs 3 1", "user:carol docs 5 1"], await harness.WaitForChangelogAsync(3));
        await harness.ExecuteAsync("INSERT INTO categories VALUES (9, 'after')");
        await harness.WaitForChangelogAsync(4);

        Assert.Equal(
            """
            docs 2 1 bucket function doc_buckets failed: owner poison is poison {"n": null, "id": 2, "flag": null, "meta": null, "note": null, "owner": "poison", "price": null, "ratio": null, "deleted_at": null}
            docs 4 1 bucket fan-out 4 exceeds the limit of 3 buckets per change (MaxBucketsPerChange) {"n": null, "id": 4, "flag": null, "meta": null, "note": null, "owner": "crowd", "price": null, "ratio": null, "deleted_at": null}
            """.ReplaceLineEndings("\n") + "\n",
            await harness.ScalarAsync<string>(
                "SELECT string_agg(table_name || ' ' || record_id || ' ' || operation || ' ' || error_text || ' ' || payload::text, E'\\n' ORDER BY id) || E'\\n' FROM sync_rule_failures"));
    }

    [Fact]
    public async Task A_per_change_assigner_answers_row_by_row_and_its_exception_becomes_a_rule_failure()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "per_change");
        var assigner = PerChangeBucketAssigner.Create((change, _) => change.RecordId == "2"
            ? throw new InvalidOperationException("no team for category 2")
            : ValueTask.FromResult<IEnumerable<string>?>(["team:" + change.GetValue("name")]));
        var options = harness.Options(assigner);
        options.Tables = new TableRegistry().Add(new TableRegistration("categories") { GlobalWhenBucketNull = true, DecodeAllColumns = true });
        await harness.StartAsync(options);

        await harness.ExecuteAsync("INSERT INTO categories VALUES (1, 'books'), (2, 'films'), (3, 'games')");

        Assert.Equal(["team:books categories 1 1", "team:games categories 3 1"], await harness.WaitForChangelogAsync(2));
        await harness.ExecuteAsync("INSERT INTO categories VALUES (4, 'music')");
        Assert.Equal(["team:books categories 1 1", "team:games categories 3 1", "team:music categories 4 1"], await harness.WaitForChangelogAsync(3));
        Assert.Equal(
            "categories 2 1 bucket assigner DelegateAssigner threw InvalidOperationException: no team for category 2 {\"id\": 2, \"name\": \"films\", \"deleted_at\": null}",
            await harness.ScalarAsync<string>("SELECT table_name || ' ' || record_id || ' ' || operation || ' ' || error_text || ' ' || payload::text FROM sync_rule_failures"));
    }

    [Fact]
    public async Task A_batched_assigner_that_throws_fails_the_changes_it_left_undecided_and_the_pipeline_goes_on()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "batched_throw");
        await harness.StartAsync(harness.Options(new ThrowingAssigner()));

        // One at a time, so that each is a batch of its own: an exception fails every undecided change of its batch.
        await harness.ExecuteAsync("INSERT INTO categories VALUES (1, 'books')");
        await harness.WaitForChangelogAsync(1);
        await harness.ExecuteAsync("INSERT INTO categories VALUES (2, 'films')");
        for (var waited = 0; await harness.ScalarAsync<long>("SELECT count(*) FROM sync_rule_failures") == 0; waited++)
        {
            Assert.True(waited < 600, "no rule failure was recorded in 30 s");
            await Task.Delay(50);
        }
        await harness.ExecuteAsync("INSERT INTO categories VALUES (3, 'games')");

        Assert.Equal(["global categories 1 1", "global categories 3 1"], await harness.WaitForChangelogAsync(2));
        Assert.Equal("categories 2 1 bucket assigner ThrowingAssigner threw InvalidOperationException: assigner is down {\"id\": 2, \"deleted_at\": null}", await harness.ScalarAsync<string>(
            "SELECT table_name || ' ' || record_id || ' ' || operation || ' ' || error_text || ' ' || payload::text FROM sync_rule_failures"));
    }

    /// <summary>Assigns <c>global</c> to every change, but throws for a batch with category 2.</summary>
    private sealed class ThrowingAssigner : IBucketAssigner
    {
        public Task AssignAsync(BucketAssignmentBatch batch, CancellationToken cancellationToken)
        {
            if (batch.Changes.Any(c => c.RecordId == "2"))
                throw new InvalidOperationException("assigner is down");
            foreach (var change in batch.Changes)
                change.Buckets.Add(BucketAssignment.GlobalBucket);
            return Task.CompletedTask;
        }
    }

    [Fact]
    public async Task A_function_name_that_is_not_an_identifier_is_rejected_and_a_missing_function_fails_the_start()
    {
        await using var harness = await CreateAsync(postgres, "fn_config");
        var invalid = Options(harness);
        invalid.Tables.Add(new TableRegistration("unregistered") { BucketFunction = "x; DROP TABLE docs" });
        var error = Assert.Throws<ArgumentException>(invalid.Validate);
        Assert.Contains("public.unregistered: BucketFunction 'x; DROP TABLE docs' is not a function name", error.Message, StringComparison.Ordinal);

        var missing = Options(harness);
        missing.Tables = new TableRegistry { GlobalBucketFunction = "rules.nowhere" }.Add(new TableRegistration("docs") { BucketFunction = "not_a_set" });
        var failure = await Assert.ThrowsAsync<WalPipelineConfigurationException>(() => WalPipeline.CheckAsync(missing));
        Assert.Contains("Bucket function rules.nowhere(text, text, jsonb, jsonb) (GlobalBucketFunction) does not exist in the source database", failure.Message, StringComparison.Ordinal);
        Assert.Contains("Bucket function \"public\".\"not_a_set\"(text, text, jsonb, jsonb) (table public.docs) must return SETOF text", failure.Message, StringComparison.Ordinal);
    }
}
