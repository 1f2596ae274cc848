using System.Text.Json;
using Npgsql;
using Synchro.Pipeline.Maintenance;
using Synchro.Pipeline.Registry;
using Synchro.Pipeline.Tests.Infrastructure;

namespace Synchro.Pipeline.Tests.Pipeline;

/// <summary>
/// A record id names one row (issue 22): a table keyed by several columns is registered with <see cref="TableRegistration.IdColumns"/>,
/// its record ids are the JSON array of their values, and every path that names a record — decoder, writer, edges, parent
/// chains, the initial snapshot, rule failures and their replay, unchanged TOAST ids — keeps each row apart, on a live pipeline.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class CompositeIdTests(PostgresServerFixture postgres)
{
    private const string Docs = "CREATE TABLE docs (tenant_id int, id int, owner text, deleted_at timestamptz, PRIMARY KEY (tenant_id, id));";

    private static TableRegistration DocsRegistration() => new("docs") { IdColumns = ["tenant_id", "id"], OwnerColumn = "owner" };

    [Fact]
    public async Task The_issues_table_registered_by_its_id_alone_is_refused_by_check_and_at_start_naming_the_key_to_use()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "composite_refused");
        await harness.ExecuteAsync(Docs + "ALTER PUBLICATION synchro_pub ADD TABLE docs;");
        var options = harness.Options();
        options.Tables = new TableRegistry().Add(new TableRegistration("docs") { OwnerColumn = "owner" });

        var check = await Assert.ThrowsAsync<WalPipelineConfigurationException>(() => WalPipeline.CheckAsync(options));
        await using (var pipeline = new WalPipeline(options))
        {
            var start = await Assert.ThrowsAsync<WalPipelineConfigurationException>(() => pipeline.RunAsync());
            Assert.Equal(check.Errors, start.Errors);
        }

        var error = Assert.Single(check.Errors);
        Assert.StartsWith("Table \"public\".\"docs\": its id column \"id\" is not unique", error, StringComparison.Ordinal);
        Assert.Contains("Register the table with IdColumns [\"tenant_id\", \"id\"], the columns of its primary key", error, StringComparison.Ordinal);
        // Nothing was created on a refused start.
        Assert.Equal(0L, await harness.ScalarAsync<long>($"SELECT count(*) FROM pg_replication_slots WHERE slot_name = '{harness.Slot}'"));

        options.Tables = new TableRegistry().Add(DocsRegistration());
        Assert.DoesNotContain(await WalPipeline.CheckAsync(options), w => w.Contains("docs", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Each_tenants_row_keeps_its_own_buckets_through_inserts_owner_changes_id_changes_and_deletes()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "composite_tenants");
        // Dora's row exists before the start: the initial snapshot gives it its edge under its composite id.
        await harness.ExecuteAsync(Docs + """
            ALTER PUBLICATION synchro_pub ADD TABLE docs;
            INSERT INTO docs VALUES (3, 7, 'dora');
            """);
        var options = harness.Options();
        options.Tables = new TableRegistry().Add(DocsRegistration());
        await harness.StartAsync(options);
        Assert.Equal(["""docs ["3","7"] user:dora"""], await EdgesAsync(harness));

        // The issue's workload: two tenants' rows with the same id, then one tenant's rows deleted.
        await harness.ExecuteAsync("INSERT INTO docs VALUES (1, 7, 'alice'), (2, 7, 'bob')");
        await harness.ExecuteAsync("UPDATE docs SET owner = 'carol' WHERE tenant_id = 2 AND id = 7");
        await harness.ExecuteAsync("UPDATE docs SET owner = 'erin' WHERE tenant_id = 3");
        await harness.ExecuteAsync("DELETE FROM docs WHERE tenant_id = 2");
        // A key that changes is a delete of the old record and an insert of the new one.
        await harness.ExecuteAsync("UPDATE docs SET id = 8 WHERE tenant_id = 1");
        await harness.ExecuteAsync("UPDATE docs SET deleted_at = now() WHERE tenant_id = 3");

        Assert.Equal(
        [
            """user:alice docs ["1","7"] 1""",
            """user:bob docs ["2","7"] 1""",
            """user:carol docs ["2","7"] 1""",
            """user:bob docs ["2","7"] 3""",
            """user:erin docs ["3","7"] 1""",
            """user:dora docs ["3","7"] 3""",
            """user:carol docs ["2","7"] 3""",
            """user:alice docs ["1","7"] 3""",
            """user:alice docs ["1","8"] 1""",
            """user:erin docs ["3","7"] 3""",
        ], await harness.WaitForChangelogAsync(10));
        // Alice's document still exists, in her bucket; nobody else's row touched it.
        Assert.Equal(["""docs ["1","8"] user:alice"""], await EdgesAsync(harness));
        Assert.Equal(0L, await harness.ScalarAsync<long>("SELECT count(*) FROM sync_rule_failures"));
    }

    [Fact]
    public async Task A_streamed_transaction_keeps_composite_ids_through_its_spill_file()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "composite_streamed");
        await StreamedTransactionTests.LowerDecodingMemoryAsync(harness);
        await harness.ExecuteAsync(Docs + "ALTER PUBLICATION synchro_pub ADD TABLE docs;");
        var options = StreamedTransactionTests.Options(harness);
        options.Tables = new TableRegistry().Add(DocsRegistration());
        await harness.StartAsync(options);

        // Past 64 kB of changes the server streams the transaction; its changes wait in a spill file until the commit.
        await harness.ExecuteAsync("""
            BEGIN;
            INSERT INTO docs SELECT t, g, 'u' || t FROM generate_series(1, 2) t, generate_series(1, 1500) g ORDER BY t, g;
            DELETE FROM docs WHERE tenant_id = 2 AND id <= 10;
            COMMIT;
            """);

        var rows = await harness.WaitForChangelogAsync(3_010);
        List<string> expected =
        [
            .. from t in Enumerable.Range(1, 2) from g in Enumerable.Range(1, 1500) select $$"""user:u{{t}} docs ["{{t}}","{{g}}"] 1""",
            .. Enumerable.Range(1, 10).Select(g => $$"""user:u2 docs ["2","{{g}}"] 3"""),
        ];
        Assert.Equal(expected, rows);
        Assert.Equal(1, harness.Pipeline!.SpillStatistics.ReplayedTransactions);
        Assert.Equal(2_990L, await harness.ScalarAsync<long>("SELECT count(*) FROM sync_bucket_edges"));
        Assert.Equal(1_500L, await harness.ScalarAsync<long>("""SELECT count(*) FROM sync_bucket_edges WHERE record_id LIKE '["1",%'"""));
    }

    [Fact]
    public async Task A_composite_parent_chain_finds_each_tenants_parent()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "composite_chain");
        await harness.ExecuteAsync(Docs + """
            CREATE TABLE pages (tenant_id int, id int, doc_id int, PRIMARY KEY (tenant_id, id), FOREIGN KEY (tenant_id, doc_id) REFERENCES docs);
            CREATE TABLE notes (id int PRIMARY KEY, tenant_id int, page_id int, body text, FOREIGN KEY (tenant_id, page_id) REFERENCES pages);
            ALTER PUBLICATION synchro_pub ADD TABLE docs, pages, notes;
            INSERT INTO docs VALUES (1, 7, 'alice'), (2, 7, 'bob');
            INSERT INTO pages VALUES (1, 1, 7), (2, 1, 7);
            """);
        var options = harness.Options();
        options.Tables = new TableRegistry()
            .Add(DocsRegistration())
            .Add(new TableRegistration("pages") { IdColumns = ["tenant_id", "id"], ParentTable = "docs", ParentForeignKeyColumns = ["tenant_id", "doc_id"], SoftDeleteColumn = null })
            .Add(new TableRegistration("notes") { ParentTable = "pages", ParentForeignKeyColumns = ["tenant_id", "page_id"], SoftDeleteColumn = null });
        await harness.StartAsync(options);
        // The snapshot walks the chain too: each page is in its own tenant's owner's bucket.
        Assert.Equal(["""docs ["1","7"] user:alice""", """docs ["2","7"] user:bob""", """pages ["1","1"] user:alice""", """pages ["2","1"] user:bob"""], await EdgesAsync(harness));

        // Parents are read as the source holds them when the change is written, so each step waits for the one before.
        (string Sql, string[] Rows)[] steps =
        [
            // Two levels: note -> page (tenant, page_id) -> doc (tenant, doc_id).
            ("INSERT INTO notes VALUES (100, 1, 1, 'a'), (200, 2, 1, 'b')", ["user:alice notes 100 1", "user:bob notes 200 1"]),
            // A parent key with a NULL points to no parent: no bucket.
            ("INSERT INTO notes VALUES (300, NULL, 1, 'orphan')", []),
            // The doc's page and the page's note move with it (CascadeParentMoves), so the note's own change later is an update.
            ("UPDATE docs SET owner = 'carol' WHERE tenant_id = 2",
                ["""user:carol docs ["2","7"] 1""", """user:bob docs ["2","7"] 3""", """user:carol pages ["2","1"] 1""", """user:bob pages ["2","1"] 3""",
                 "user:carol notes 200 1", "user:bob notes 200 3"]),
            ("UPDATE notes SET body = 'b2' WHERE id = 200", ["user:carol notes 200 2"]),
            ("UPDATE notes SET tenant_id = 1 WHERE id = 300", ["user:alice notes 300 1"]),
            ("INSERT INTO pages VALUES (2, 2, 7)", ["""user:carol pages ["2","2"] 1"""]),
            ("DELETE FROM notes WHERE id = 100", ["user:alice notes 100 3"]),
        ];
        await RunStepsAsync(steps, harness);
    }

    [Fact]
    public async Task Values_with_separators_quotes_unicode_and_empty_strings_give_ids_that_split_back_into_them()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "composite_values");
        await harness.ExecuteAsync("""
            CREATE TABLE kv (a text, b text, owner text, PRIMARY KEY (a, b));
            CREATE TABLE opt (a text NOT NULL, b text, owner text, UNIQUE NULLS NOT DISTINCT (a, b));
            ALTER TABLE opt REPLICA IDENTITY FULL;
            ALTER PUBLICATION synchro_pub ADD TABLE kv, opt;
            """);
        var options = harness.Options();
        options.Tables = new TableRegistry()
            .Add(new TableRegistration("kv") { IdColumns = ["a", "b"], OwnerColumn = "owner", SoftDeleteColumn = null })
            .Add(new TableRegistration("opt") { IdColumns = ["a", "b"], OwnerColumn = "owner", SoftDeleteColumn = null });
        await harness.StartAsync(options);

        (string A, string B, string Id)[] rows =
        [
            ("a,b", "c", """["a,b","c"]"""),
            ("a", "b,c", """["a","b,c"]"""),
            ("a\",\"b", "c", """["a\",\"b","c"]"""),
            ("\"q\"", "\\", """["\"q\"","\\"]"""),
            ("'single'", "[1]", """["'single'","[1]"]"""),
            ("", "", """["",""]"""),
            ("", "x", """["","x"]"""),
            ("null", "", """["null",""]"""),
            ("東京 🚀", "é ü", """["東京 🚀","é ü"]"""),
            ("tab\tnl\n", "\u0001\u007f", "[\"tab\\tnl\\n\",\"\\u0001\u007f\"]"),
        ];
        foreach (var (a, b, _) in rows)
            await ExecuteAsync(harness, "INSERT INTO kv VALUES ($1, $2, 'alice')", a, b);
        await harness.ExecuteAsync("UPDATE kv SET owner = 'bob'");
        await harness.ExecuteAsync("DELETE FROM kv");
        // NULL and the empty string are two records: the delete of one leaves the other.
        await harness.ExecuteAsync("INSERT INTO opt VALUES ('x', NULL, 'alice'), ('x', '', 'bob')");
        await harness.ExecuteAsync("DELETE FROM opt WHERE b IS NULL");

        var changelog = await harness.WaitForChangelogAsync(rows.Length * 4 + 3);

        var kv = changelog.Where(r => r.Contains(" kv ", StringComparison.Ordinal)).ToList();
        Assert.Equal(rows.Select(r => $"user:alice kv {r.Id} 1"), kv.Take(rows.Length));
        // The UPDATE and the DELETE of all rows: their order within each statement is the table's, so compared as sets.
        Assert.Equal(
            rows.SelectMany(r => new[] { $"user:bob kv {r.Id} 1", $"user:alice kv {r.Id} 3" }).Order(StringComparer.Ordinal),
            kv.Skip(rows.Length).Take(rows.Length * 2).Order(StringComparer.Ordinal));
        Assert.Equal(rows.Select(r => $"user:bob kv {r.Id} 3").Order(StringComparer.Ordinal), kv.Skip(rows.Length * 3).Order(StringComparer.Ordinal));
        // Any JSON parser splits an id back into exactly the row's values, as does the registration.
        var ids = await Sql.RowsAsync(harness.ConnectionString, "SELECT record_id FROM sync_changelog WHERE table_name = 'kv' AND operation = 1 AND bucket_id = 'user:alice' ORDER BY seq");
        Assert.Equal(rows.Select(r => new[] { r.A, r.B }), ids.Select(id => JsonSerializer.Deserialize<string[]>(id)!));
        Assert.Equal(rows.Select(r => new[] { r.A, r.B }), ids.Select(id => options.Tables.First(t => t.Name == "kv").ParseRecordId(id).ToArray()));
        Assert.Equal(
        [
            """user:alice opt ["x",null] 1""",
            """user:bob opt ["x",""] 1""",
            """user:alice opt ["x",null] 3""",
        ], changelog.Where(r => r.Contains(" opt ", StringComparison.Ordinal)));
        Assert.Equal(["""opt ["x",""] user:bob"""], await EdgesAsync(harness));
    }

    [Fact]
    public async Task Text_and_binary_tuple_modes_write_identical_changelogs_of_composite_ids()
    {
        var source = await postgres.CreateDatabaseAsync("composite_modes");
        var textChangelog = await postgres.CreateDatabaseAsync("composite_modes_text");
        var binaryChangelog = await postgres.CreateDatabaseAsync("composite_modes_bin");
        await Sql.ExecuteAsync(source, """
            CREATE TABLE accounts (tenant uuid, id int8, owner_id int4, deleted_at timestamptz, PRIMARY KEY (tenant, id));
            CREATE TABLE entries (tenant uuid, account_id int8, line int2, code varchar(20), amount int4,
                PRIMARY KEY (tenant, account_id, line, code),
                FOREIGN KEY (tenant, account_id) REFERENCES accounts ON UPDATE CASCADE ON DELETE CASCADE);
            CREATE PUBLICATION composite_pub FOR TABLE accounts, entries;
            """);
        await using var text = PipelineHarness.Attach(source, "composite_text_slot", textChangelog);
        await text.StartAsync(ModesOptions(source, textChangelog, "composite_text_slot", binary: false));
        await using var binary = PipelineHarness.Attach(source, "composite_bin_slot", binaryChangelog);
        await binary.StartAsync(ModesOptions(source, binaryChangelog, "composite_bin_slot", binary: true));

        const string T1 = "9f1c2a4e-8d3b-4c5e-a1f0-123456789abc";
        const string T2 = "00000000-0000-0000-0000-000000000000";
        const string Min = "-9223372036854775808";
        // Parents are read as the source holds them when the change is written, so each step waits for the one before.
        (string Sql, string[] Rows)[] steps =
        [
            ($"INSERT INTO accounts VALUES ('{T1}', {Min}, 7), ('{T2}', {Min}, -1)",
                [$$"""user:7 accounts ["{{T1}}","{{Min}}"] 1""", $$"""user:-1 accounts ["{{T2}}","{{Min}}"] 1"""]),
            ($"INSERT INTO entries VALUES ('{T1}', {Min}, -32768, 'a,\"b\"', 1), ('{T2}', {Min}, 32767, '', 2)",
                [$$"""user:7 entries ["{{T1}}","{{Min}}","-32768","a,\"b\""] 1""", $$"""user:-1 entries ["{{T2}}","{{Min}}","32767",""] 1"""]),
            ($"UPDATE entries SET amount = 3 WHERE tenant = '{T1}'", [$$"""user:7 entries ["{{T1}}","{{Min}}","-32768","a,\"b\""] 2"""]),
            ($"UPDATE accounts SET owner_id = 8 WHERE tenant = '{T1}'",
                // Its entries move with it (CascadeParentMoves).
                [$$"""user:8 accounts ["{{T1}}","{{Min}}"] 1""", $$"""user:7 accounts ["{{T1}}","{{Min}}"] 3""",
                 $$"""user:8 entries ["{{T1}}","{{Min}}","-32768","a,\"b\""] 1""", $$"""user:7 entries ["{{T1}}","{{Min}}","-32768","a,\"b\""] 3"""]),
            // The parent's key changes and cascades: the child's record id changes with it (a delete and an insert each).
            ($"UPDATE accounts SET id = 42 WHERE tenant = '{T2}'",
            [
                $$"""user:-1 accounts ["{{T2}}","{{Min}}"] 3""", $$"""user:-1 accounts ["{{T2}}","42"] 1""",
                $$"""user:-1 entries ["{{T2}}","{{Min}}","32767",""] 3""", $$"""user:-1 entries ["{{T2}}","42","32767",""] 1""",
            ]),
            ($"UPDATE accounts SET deleted_at = now() WHERE tenant = '{T1}'", [$$"""user:8 accounts ["{{T1}}","{{Min}}"] 3"""]),
            ($"DELETE FROM accounts WHERE tenant = '{T2}'",
                [$$"""user:-1 accounts ["{{T2}}","42"] 3""", $$"""user:-1 entries ["{{T2}}","42","32767",""] 3"""]),
        ];
        await RunStepsAsync(steps, text, binary);

        var textRows = await text.ChangelogAsync();
        Assert.Equal(steps.SelectMany(s => s.Rows), textRows);
        Assert.Equal(textRows, await binary.ChangelogAsync());
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task An_id_column_stored_out_of_line_and_left_unchanged_keeps_the_record(bool binary)
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, binary ? "composite_toast_bin" : "composite_toast");
        await harness.ExecuteAsync("""
            CREATE TABLE files (tenant int, path text, owner text, note text, PRIMARY KEY (tenant, path));
            ALTER TABLE files ALTER COLUMN path SET STORAGE EXTERNAL;
            ALTER PUBLICATION synchro_pub ADD TABLE files;
            """);
        var options = harness.Options();
        options.BinaryTupleMode = binary;
        options.Tables = new TableRegistry().Add(new TableRegistration("files") { IdColumns = ["tenant", "path"], OwnerColumn = "owner", SoftDeleteColumn = null });
        // A path long enough to be stored out of line makes an id longer than the default limit.
        (options.MaxRecordIdBytes, options.MaxBucketIdBytes) = (2_300, 256);
        await harness.StartAsync(options);
        var path = string.Concat(Enumerable.Range(0, 2_200).Select(i => (char)('a' + (i * 7919 % 26))));

        await harness.ExecuteAsync($"INSERT INTO files VALUES (1, '{path}', 'alice', 'v1')");
        var toast = await harness.ScalarAsync<string>("SELECT reltoastrelid::regclass::text FROM pg_class WHERE oid = 'files'::regclass");
        Assert.True(await harness.ScalarAsync<long>($"SELECT count(*) FROM {toast}") >= 2, "the path is stored out of line");
        // The path arrives as an unchanged TOAST value; the old key the server sends with it completes the id.
        await harness.ExecuteAsync("UPDATE files SET note = 'v2'");
        await harness.ExecuteAsync("UPDATE files SET owner = 'bob'");
        await harness.ExecuteAsync("DELETE FROM files");

        var id = $$"""["1","{{path}}"]""";
        Assert.Equal(
            [$"user:alice files {id} 1", $"user:alice files {id} 2", $"user:bob files {id} 1", $"user:alice files {id} 3", $"user:bob files {id} 3"],
            await harness.WaitForChangelogAsync(5));
        Assert.Empty(await EdgesAsync(harness));
    }

    [Fact]
    public async Task A_failed_change_of_a_composite_record_with_a_null_column_is_replayed_under_its_id()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "composite_replay");
        await harness.ExecuteAsync("""
            CREATE TABLE opt (a text NOT NULL, b text, owner text, UNIQUE NULLS NOT DISTINCT (a, b));
            ALTER TABLE opt REPLICA IDENTITY FULL;
            ALTER PUBLICATION synchro_pub ADD TABLE opt;
            """);
        var options = harness.Options();
        options.Tables = new TableRegistry().Add(new TableRegistration("opt") { IdColumns = ["a", "b"], OwnerColumn = "owner", SoftDeleteColumn = null });
        await harness.StartAsync(options);

        // An owner too long for a bucket id fails the change; the row next to it, with '' where this one has NULL, is written.
        await harness.ExecuteAsync("INSERT INTO opt VALUES ('x', NULL, repeat('o', 2000)), ('x', '', 'bob')");
        Assert.Equal(["""user:bob opt ["x",""] 1"""], await harness.WaitForChangelogAsync(1));
        Assert.Equal(["""opt ["x",null] 1"""], await Sql.RowsAsync(harness.ConnectionString, "SELECT table_name || ' ' || record_id || ' ' || operation FROM sync_rule_failures"));
        await harness.StopAsync();

        // Fixed at the source: replay finds the row by its id (NULL matched as NULL) and writes it under that id.
        await harness.ExecuteAsync("UPDATE opt SET owner = 'alice' WHERE b IS NULL");
        var replay = await new RuleFailureReplayer(options).ReplayAsync();

        Assert.Equal((1, 0, 0), (replay.Replayed, replay.Superseded, replay.StillFailing));
        Assert.Equal(["""user:bob opt ["x",""] 1""", """user:alice opt ["x",null] 1"""], await harness.ChangelogAsync());
        Assert.Equal(["""opt ["x",""] user:bob""", """opt ["x",null] user:alice"""], await EdgesAsync(harness));
    }

    /// <summary>Runs each step's SQL on the first harness's source and waits until every harness's changelog holds the rows so far, in order.</summary>
    private static async Task RunStepsAsync((string Sql, string[] Rows)[] steps, params PipelineHarness[] harnesses)
    {
        var expected = new List<string>();
        foreach (var (sql, rows) in steps)
        {
            await harnesses[0].ExecuteAsync(sql);
            expected.AddRange(rows);
            foreach (var harness in harnesses)
            {
                var written = await harness.WaitForChangelogAsync(expected.Count);
                Assert.Equal(expected, written);
            }
        }
    }

    private static WalPipelineOptions ModesOptions(string source, string changelog, string slot, bool binary) => new()
    {
        ConnectionString = source,
        ChangelogConnectionString = changelog,
        SlotName = slot,
        PublicationName = "composite_pub",
        BinaryTupleMode = binary,
        Tables = new TableRegistry()
            .Add(new TableRegistration("accounts") { IdColumns = ["tenant", "id"], OwnerColumn = "owner_id" })
            .Add(new TableRegistration("entries") { IdColumns = ["tenant", "account_id", "line", "code"], ParentTable = "accounts", ParentForeignKeyColumns = ["tenant", "account_id"], SoftDeleteColumn = null }),
        BatchLinger = TimeSpan.FromMilliseconds(5),
        StatusInterval = TimeSpan.FromSeconds(1),
        MaxReconnectDelay = TimeSpan.FromSeconds(1),
    };

    private static Task<List<string>> EdgesAsync(PipelineHarness harness)
        => Sql.RowsAsync(harness.ChangelogConnectionString, "SELECT table_name || ' ' || record_id || ' ' || bucket_id FROM sync_bucket_edges ORDER BY table_name, record_id COLLATE \"C\", bucket_id");

    private static async Task ExecuteAsync(PipelineHarness harness, string sql, params string[] values)
    {
        await using var connection = new NpgsqlConnection(harness.ConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        foreach (var value in values)
            command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = value });
        await command.ExecuteNonQueryAsync();
    }
}
