using Synchro.Pipeline.Tests.Infrastructure;

namespace Synchro.Pipeline.Tests.Cli;

/// <summary><c>synchro-pipeline check</c> and <c>migrate</c> against a real database.</summary>
[Collection(PostgresCollection.Name)]
[Trait(TestCategories.Name, TestCategories.VersionSensitive)]
public sealed class CheckAndMigrateCommandTests(PostgresServerFixture postgres)
{
    private const int Configuration = 3;

    [Fact]
    public async Task Check_reports_a_missing_publication_with_exit_code_3_then_OK_once_it_exists()
    {
        var connectionString = await postgres.CreateDatabaseAsync("cli_check");
        await Sql.ExecuteAsync(connectionString, "CREATE TABLE orders (id int PRIMARY KEY, user_id text, deleted_at timestamptz)");
        string[] arguments = ["check", "--connection", connectionString, "--slot", "slot_cli_check", "--publication", "cli_pub"];
        using var directory = new WorkingDirectory();
        directory.WriteFile("""{ "Synchro": { "Tables": { "orders": { "OwnerColumn": "user_id" } } } }""");

        var missing = await CliProcess.RunInAsync(directory.Path, null, arguments);
        await Sql.ExecuteAsync(connectionString, "CREATE PUBLICATION cli_pub FOR TABLE orders");
        var ready = await CliProcess.RunInAsync(directory.Path, null, arguments);

        Assert.True(missing.ExitCode == Configuration, missing.ToString());
        Assert.StartsWith("NOT READY: slot slot_cli_check, publication cli_pub, 1 table(s) on 127.0.0.1:", missing.Output, StringComparison.Ordinal);
        Assert.Contains("Publication \"cli_pub\" does not exist", missing.Output, StringComparison.Ordinal);
        Assert.Contains("CREATE PUBLICATION \"cli_pub\" FOR", missing.Output, StringComparison.Ordinal);

        Assert.True(ready.ExitCode == 0, ready.ToString());
        Assert.StartsWith("OK: slot slot_cli_check, publication cli_pub", ready.Output, StringComparison.Ordinal);
        Assert.Contains("Replication slot 'slot_cli_check' does not exist yet", ready.Output, StringComparison.Ordinal);
        Assert.Contains("sync_changelog", ready.Output, StringComparison.Ordinal);
        // Nothing was created: no slot, no sidecar tables.
        Assert.False(await Sql.ScalarAsync<bool>(connectionString, "SELECT EXISTS (SELECT FROM pg_replication_slots WHERE slot_name = 'slot_cli_check')"));
        Assert.False(await Sql.ScalarAsync<bool>(connectionString, "SELECT to_regclass('sync_changelog') IS NOT NULL"));
    }

    [Fact]
    public async Task Check_refuses_a_position_behind_the_slot_as_lost_batches_with_the_recovery()
    {
        const string slot = "slot_cli_check_behind";
        var connectionString = await postgres.CreateDatabaseAsync("cli_check_behind");
        await Sql.ExecuteAsync(connectionString, "CREATE TABLE orders (id int PRIMARY KEY, user_id text, deleted_at timestamptz); CREATE PUBLICATION cli_pub FOR TABLE orders");
        await Sql.ExecuteAsync(connectionString, $"SELECT pg_create_logical_replication_slot('{slot}', 'pgoutput')");
        var migrate = await CliProcess.RunAsync("migrate", "--connection", connectionString);
        Assert.True(migrate.ExitCode == 0, migrate.ToString());
        // A changelog restored from a backup older than what the slot was confirmed to.
        await Sql.ExecuteAsync(connectionString, $"INSERT INTO sync_wal_position (slot_name, confirmed_lsn) SELECT slot_name, (confirmed_flush_lsn - '0/0')::bigint - 16 FROM pg_replication_slots WHERE slot_name = '{slot}'");
        var confirmed = await Sql.ScalarAsync<string>(connectionString, $"SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = '{slot}'");
        using var directory = new WorkingDirectory();
        directory.WriteFile("""{ "Synchro": { "Tables": { "orders": { "OwnerColumn": "user_id" } } } }""");

        var result = await CliProcess.RunInAsync(directory.Path, null, "check", "--connection", connectionString, "--slot", slot, "--publication", "cli_pub");

        Assert.True(result.ExitCode == Configuration, result.ToString());
        Assert.StartsWith($"NOT READY: slot {slot}, publication cli_pub, 1 table(s) on 127.0.0.1:", result.Output, StringComparison.Ordinal);
        Assert.Contains($"Replication slot '{slot}' has been confirmed up to {confirmed}, 16 bytes past the persisted position", result.Output, StringComparison.Ordinal);
        Assert.Contains($"SELECT pg_drop_replication_slot('{slot}')", result.Output, StringComparison.Ordinal);
        Assert.Equal(confirmed, await Sql.ScalarAsync<string>(connectionString, $"SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = '{slot}'"));
    }

    [Fact]
    public async Task Check_warns_that_a_publication_for_all_tables_covers_the_sidecar_tables_and_gives_the_replacement()
    {
        var connectionString = await postgres.CreateDatabaseAsync("cli_check_sidecars");
        await Sql.ExecuteAsync(connectionString, "CREATE TABLE orders (id int PRIMARY KEY, user_id text, deleted_at timestamptz); CREATE PUBLICATION cli_pub FOR ALL TABLES");
        using var directory = new WorkingDirectory();
        directory.WriteFile("""{ "Synchro": { "Tables": { "orders": { "OwnerColumn": "user_id" } } } }""");

        var result = await CliProcess.RunInAsync(directory.Path, null, "check", "--connection", connectionString, "--slot", "slot_cli_check_sidecars", "--publication", "cli_pub");

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.StartsWith("OK: slot slot_cli_check_sidecars, publication cli_pub, 1 table(s) on 127.0.0.1:", result.Output, StringComparison.Ordinal);
        Assert.Contains("; 3 warning(s)", result.Output, StringComparison.Ordinal);
        Assert.Contains(
            "Publication \"cli_pub\" covers the sidecar tables \"public\".\"sync_changelog\", \"public\".\"sync_bucket_edges\", \"public\".\"sync_wal_position\", "
            + "\"public\".\"sync_rule_failures\", \"public\".\"sync_prepared_transactions\", \"public\".\"sync_transaction_skips\", \"public\".\"sync_bucket_horizons\", \"public\".\"sync_compaction_state\" (it is FOR ALL TABLES",
            result.Output, StringComparison.Ordinal);
        Assert.Contains("every changelog write is decoded by the walsender and sent back to the pipeline", result.Output, StringComparison.Ordinal);
        Assert.Contains("BEGIN; DROP PUBLICATION \"cli_pub\"; CREATE PUBLICATION \"cli_pub\" FOR TABLE \"public\".\"orders\"; COMMIT;", result.Output, StringComparison.Ordinal);
        // 16+ can leave the pipeline's own (origin-tagged) writes out on the server, which the warning then offers too.
        Assert.Contains(
            postgres.Server.ServerVersion >= 16
                ? "Or write the changelog to another database (ChangelogConnectionString), or turn FilterOriginsOnServer on: the server then leaves the pipeline's writes out"
                : "Or write the changelog to another database (ChangelogConnectionString).",
            result.Output,
            StringComparison.Ordinal);
    }

    [Fact]
    public async Task Check_warns_about_a_child_table_without_an_index_on_its_parent_key_and_its_statement_silences_it()
    {
        var connectionString = await postgres.CreateDatabaseAsync("cli_check_fk_index");
        await Sql.ExecuteAsync(connectionString, """
            CREATE TABLE orders (id int PRIMARY KEY, user_id text, deleted_at timestamptz);
            CREATE TABLE order_lines (id int PRIMARY KEY, order_id int NOT NULL REFERENCES orders);
            CREATE PUBLICATION cli_pub FOR TABLE orders, order_lines;
            """);
        string[] arguments = ["check", "--connection", connectionString, "--slot", "slot_cli_check_fk", "--publication", "cli_pub"];
        using var directory = new WorkingDirectory();
        directory.WriteFile("""
            { "Synchro": { "Tables": {
                "orders": { "OwnerColumn": "user_id" },
                "order_lines": { "ParentTable": "orders", "ParentForeignKeyColumn": "order_id", "SoftDeleteColumn": "" } } } }
            """);
        const string Statement = "CREATE INDEX CONCURRENTLY ON \"public\".\"order_lines\" (\"order_id\");";

        var missing = await CliProcess.RunInAsync(directory.Path, null, arguments);
        await Sql.ExecuteAsync(connectionString, Statement);
        var indexed = await CliProcess.RunInAsync(directory.Path, null, arguments);

        Assert.True(missing.ExitCode == 0, missing.ToString());
        Assert.StartsWith("OK: slot slot_cli_check_fk, publication cli_pub, 2 table(s) on 127.0.0.1:", missing.Output, StringComparison.Ordinal);
        Assert.Contains("; 3 warning(s)", missing.Output, StringComparison.Ordinal);
        Assert.Contains("Table \"public\".\"order_lines\" has no index that starts with its parent foreign key column \"order_id\".", missing.Output, StringComparison.Ordinal);
        Assert.Contains(Statement, missing.Output, StringComparison.Ordinal);

        Assert.True(indexed.ExitCode == 0, indexed.ToString());
        Assert.Contains("; 2 warning(s)", indexed.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("has no index", indexed.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Migrate_creates_the_sidecar_tables_and_says_so_then_finds_nothing_to_do()
    {
        var connectionString = await postgres.CreateDatabaseAsync("cli_migrate");

        var first = await CliProcess.RunAsync("migrate", "--connection", connectionString);
        var second = await CliProcess.RunAsync("migrate", "--connection", connectionString);

        Assert.True(first.ExitCode == 0, first.ToString());
        Assert.Contains("created  sync_changelog, sync_bucket_edges, sync_wal_position, sync_rule_failures, sync_prepared_transactions, sync_transaction_skips, sync_bucket_horizons, sync_compaction_state", first.Output, StringComparison.Ordinal);
        Assert.Contains("Created 8 of 8 tables.", first.Output, StringComparison.Ordinal);
        foreach (var table in new[] { "sync_changelog", "sync_bucket_edges", "sync_wal_position", "sync_rule_failures" })
            Assert.True(await Sql.ScalarAsync<bool>(connectionString, "SELECT to_regclass(@table) IS NOT NULL", ("table", table)), $"{table} was not created");

        Assert.True(second.ExitCode == 0, second.ToString());
        Assert.Contains("Nothing to create: the database was up to date.", second.Output, StringComparison.Ordinal);
    }
}
