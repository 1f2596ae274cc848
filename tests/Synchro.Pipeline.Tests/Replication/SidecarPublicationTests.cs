using System.Text.RegularExpressions;
using Microsoft.Extensions.Logging;
using Npgsql;
using Synchro.Pipeline.Changelog;
using Synchro.Pipeline.Registry;
using Synchro.Pipeline.Tests.Infrastructure;
using Synchro.Pipeline.Tests.Pipeline;

namespace Synchro.Pipeline.Tests.Replication;

/// <summary>
/// The pipeline must not consume its own writes: with the changelog in the source database, a publication that covers the
/// sidecar tables sends every changelog write back to the pipeline. <c>check</c> and the start-up checks warn, naming the
/// covered tables, before and after they exist, with the statements that leave them out.
/// </summary>
[Collection(PostgresCollection.Name)]
[Trait(TestCategories.Name, TestCategories.VersionSensitive)]
public sealed partial class SidecarPublicationTests(PostgresServerFixture postgres)
{
    internal const string Publication = "sidecar_pub";
    internal const string Covers = "covers the sidecar tables";

    private const string Tables = """
        CREATE TABLE items (id bigint PRIMARY KEY, owner_id text, deleted_at timestamptz);
        CREATE TABLE notes (id bigint PRIMARY KEY, item_id bigint REFERENCES items, deleted_at timestamptz);
        CREATE INDEX ON notes (item_id);
        CREATE TABLE other (id bigint PRIMARY KEY);
        """;

    internal const string AllSidecarTables =
        "\"public\".\"sync_changelog\", \"public\".\"sync_bucket_edges\", \"public\".\"sync_wal_position\", \"public\".\"sync_rule_failures\", "
        + "\"public\".\"sync_prepared_transactions\", \"public\".\"sync_transaction_skips\", \"public\".\"sync_bucket_horizons\", \"public\".\"sync_compaction_state\"";

    internal const string Cost =
        "and the changelog is written to this same database: every changelog write is decoded by the walsender and sent back to the pipeline, "
        + "which discards it, spending CPU, WAL decoding and network on the primary for nothing.";

    internal const string ElsewhereOnly = " Or write the changelog to another database (ChangelogConnectionString).";

    internal const string ElsewhereOrFilter =
        " Or write the changelog to another database (ChangelogConnectionString), or turn FilterOriginsOnServer on: the server then leaves the "
        + "pipeline's writes out, but also every change that logical replication writes into this database.";

    /// <summary>The warning's last way out: 16+ can also leave the pipeline's own (origin-tagged) writes out on the server.</summary>
    private string Elsewhere => postgres.Server.ServerVersion >= 16 ? ElsewhereOrFilter : ElsewhereOnly;

    private string AllTablesWarning =>
        $"Publication \"{Publication}\" covers the sidecar tables {AllSidecarTables} (it is FOR ALL TABLES, which includes tables created later), {Cost} "
        + "Publish only the registered tables, replacing the publication in one transaction (an all-tables publication cannot be altered into a list): "
        + $"BEGIN; DROP PUBLICATION \"{Publication}\"; CREATE PUBLICATION \"{Publication}\" FOR TABLE \"public\".\"items\", \"public\".\"notes\"; COMMIT;"
        + Elsewhere;

    [Fact]
    public async Task A_publication_for_all_tables_is_one_warning_naming_every_sidecar_table_before_and_after_migrate()
    {
        var database = await DatabaseAsync($"CREATE PUBLICATION {Publication} FOR ALL TABLES");

        var before = await WalPipeline.CheckAsync(Options(database));
        await MigrateAsync(database);
        var after = await WalPipeline.CheckAsync(Options(database));

        Assert.Equal(AllTablesWarning, Assert.Single(before, w => w.Contains(Covers, StringComparison.Ordinal)));
        Assert.Equal(AllTablesWarning, Assert.Single(after, w => w.Contains(Covers, StringComparison.Ordinal)));

        // The suggested fix works: nothing of the pipeline's is covered any more, and the registered tables still are.
        await Sql.ExecuteAsync(database, Fix(AllTablesWarning));
        var fixedUp = await WalPipeline.CheckAsync(Options(database));
        Assert.DoesNotContain(fixedUp, w => w.Contains("Publication", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_publication_for_the_schema_is_a_warning_that_publishes_the_registered_tables_by_name_instead()
    {
        var database = await DatabaseAsync($"CREATE PUBLICATION {Publication} FOR TABLES IN SCHEMA public");
        var expected = $"Publication \"{Publication}\" covers the sidecar tables {AllSidecarTables} "
            + $"(it publishes schema \"public\" (FOR TABLES IN SCHEMA), which includes tables created later), {Cost} "
            + $"Publish the registered tables by name instead of the schema, in one transaction: BEGIN; ALTER PUBLICATION \"{Publication}\" DROP TABLES IN SCHEMA \"public\"; "
            + $"ALTER PUBLICATION \"{Publication}\" ADD TABLE \"public\".\"items\", \"public\".\"notes\"; COMMIT;" + Elsewhere;

        var before = await WalPipeline.CheckAsync(Options(database));
        await MigrateAsync(database);
        var after = await WalPipeline.CheckAsync(Options(database));

        Assert.Equal(expected, Assert.Single(before, w => w.Contains(Covers, StringComparison.Ordinal)));
        Assert.Equal(expected, Assert.Single(after, w => w.Contains(Covers, StringComparison.Ordinal)));
        await Sql.ExecuteAsync(database, Fix(expected));
        Assert.DoesNotContain(await WalPipeline.CheckAsync(Options(database)), w => w.Contains("Publication", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_publication_listing_the_registered_tables_passes_and_one_listing_sidecar_tables_says_to_drop_them()
    {
        var database = await DatabaseAsync($"CREATE PUBLICATION {Publication} FOR TABLE items, notes");

        var before = await WalPipeline.CheckAsync(Options(database));
        await MigrateAsync(database);
        var after = await WalPipeline.CheckAsync(Options(database));
        await Sql.ExecuteAsync(database, $"ALTER PUBLICATION {Publication} ADD TABLE sync_changelog, sync_bucket_edges");
        var listing = await WalPipeline.CheckAsync(Options(database));

        Assert.DoesNotContain(before, w => w.Contains(Covers, StringComparison.Ordinal));
        Assert.DoesNotContain(after, w => !w.StartsWith("Replication slot", StringComparison.Ordinal));
        var warning = Assert.Single(listing, w => w.Contains(Covers, StringComparison.Ordinal));
        Assert.Equal(
            $"Publication \"{Publication}\" covers the sidecar tables \"public\".\"sync_changelog\", \"public\".\"sync_bucket_edges\" (it lists them), {Cost} "
            + $"Drop them from it: ALTER PUBLICATION \"{Publication}\" DROP TABLE \"public\".\"sync_changelog\", \"public\".\"sync_bucket_edges\";" + Elsewhere,
            warning);
        await Sql.ExecuteAsync(database, Fix(warning));
        Assert.DoesNotContain(await WalPipeline.CheckAsync(Options(database)), w => w.Contains(Covers, StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_sidecar_table_both_listed_and_in_a_published_schema_is_dropped_both_ways_in_one_transaction()
    {
        var database = await DatabaseAsync($"CREATE PUBLICATION {Publication} FOR TABLE items, notes, TABLES IN SCHEMA public");
        await MigrateAsync(database);
        await Sql.ExecuteAsync(database, $"ALTER PUBLICATION {Publication} ADD TABLE sync_changelog");

        var warning = Assert.Single(await WalPipeline.CheckAsync(Options(database)), w => w.Contains(Covers, StringComparison.Ordinal));

        Assert.Equal(
            $"Publication \"{Publication}\" covers the sidecar tables {AllSidecarTables} (it lists \"public\".\"sync_changelog\" and publishes schema \"public\" "
            + $"(FOR TABLES IN SCHEMA), which includes tables created later), {Cost} Stop publishing the schema, in one transaction: "
            + $"BEGIN; ALTER PUBLICATION \"{Publication}\" DROP TABLE \"public\".\"sync_changelog\"; ALTER PUBLICATION \"{Publication}\" DROP TABLES IN SCHEMA \"public\"; COMMIT;"
            + Elsewhere,
            warning);
        await Sql.ExecuteAsync(database, Fix(warning));
        Assert.DoesNotContain(await WalPipeline.CheckAsync(Options(database)), w => w.Contains("Publication", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_changelog_in_another_database_is_not_covered_by_the_sources_publication_for_all_tables()
    {
        var database = await DatabaseAsync($"CREATE PUBLICATION {Publication} FOR ALL TABLES");
        var changelog = await postgres.CreateDatabaseAsync("sidecar_changelog");
        var options = Options(database);
        options.ChangelogConnectionString = changelog;

        var before = await WalPipeline.CheckAsync(options);
        await MigrateAsync(changelog);
        var after = await WalPipeline.CheckAsync(options);

        Assert.DoesNotContain(before, w => w.Contains(Covers, StringComparison.Ordinal));
        Assert.DoesNotContain(after, w => w.Contains(Covers, StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_changelog_connection_string_written_differently_for_the_source_database_is_the_source_database()
    {
        var database = await DatabaseAsync($"CREATE PUBLICATION {Publication} FOR ALL TABLES");
        var options = Options(database);
        options.ChangelogConnectionString = new NpgsqlConnectionStringBuilder(database) { ApplicationName = "changelog", Pooling = false }.ConnectionString;

        var warnings = await WalPipeline.CheckAsync(options);

        Assert.Equal(AllTablesWarning, Assert.Single(warnings, w => w.Contains(Covers, StringComparison.Ordinal)));
    }

    [Fact]
    public async Task The_sidecar_tables_are_looked_for_in_the_schema_the_changelog_connections_search_path_puts_them_in()
    {
        var database = await DatabaseAsync(
            "CREATE SCHEMA sidecars",
            $"CREATE PUBLICATION {Publication} FOR TABLES IN SCHEMA public");
        var options = Options(database);
        options.ChangelogConnectionString = new NpgsqlConnectionStringBuilder(database) { SearchPath = "sidecars" }.ConnectionString;

        var publicOnly = await WalPipeline.CheckAsync(options);
        await Sql.ExecuteAsync(database, $"DROP PUBLICATION {Publication}; CREATE PUBLICATION {Publication} FOR TABLE items, notes, TABLES IN SCHEMA sidecars");
        var before = await WalPipeline.CheckAsync(options);
        await MigrateAsync(options.ChangelogConnectionString);
        var after = await WalPipeline.CheckAsync(options);

        Assert.DoesNotContain(publicOnly, w => w.Contains(Covers, StringComparison.Ordinal));
        var expected = $"Publication \"{Publication}\" covers the sidecar tables {AllSidecarTables.Replace("\"public\"", "\"sidecars\"", StringComparison.Ordinal)} "
            + $"(it publishes schema \"sidecars\" (FOR TABLES IN SCHEMA), which includes tables created later), {Cost} "
            + $"Stop publishing the schema: ALTER PUBLICATION \"{Publication}\" DROP TABLES IN SCHEMA \"sidecars\";" + Elsewhere;
        Assert.Equal(expected, Assert.Single(before, w => w.Contains(Covers, StringComparison.Ordinal)));
        Assert.Equal(expected, Assert.Single(after, w => w.Contains(Covers, StringComparison.Ordinal)));
        Assert.True(await Sql.ScalarAsync<bool>(database, "SELECT to_regclass('sidecars.sync_changelog') IS NOT NULL"));
    }

    [Fact]
    public async Task Run_logs_the_warning_at_start_and_runs()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "sidecar_run");
        await harness.ExecuteAsync($"DROP PUBLICATION {PipelineHarness.Publication}; CREATE PUBLICATION {PipelineHarness.Publication} FOR ALL TABLES");
        var logs = new RecordingLoggerFactory();
        var options = harness.Options();
        options.LoggerFactory = logs;

        await harness.StartAsync(options);
        await harness.ExecuteAsync("INSERT INTO categories VALUES (1, 'a')");
        await harness.WaitForChangelogAsync(1);

        var warning = Assert.Single(logs.Entries, e => e.Message.Contains(Covers, StringComparison.Ordinal));
        Assert.Equal((1003, LogLevel.Warning), (warning.EventId.Id, warning.Level));
        Assert.StartsWith($"Publication \"{PipelineHarness.Publication}\" covers the sidecar tables {AllSidecarTables} (it is FOR ALL TABLES", warning.Message, StringComparison.Ordinal);
        Assert.Contains(
            $"CREATE PUBLICATION \"{PipelineHarness.Publication}\" FOR TABLE \"public\".\"orders\", \"public\".\"order_lines\", \"public\".\"categories\"; COMMIT;",
            warning.Message, StringComparison.Ordinal);
    }

    /// <summary>The SQL of the fix a warning gives.</summary>
    private static string Fix(string warning)
    {
        var match = FixSql().Match(warning);
        Assert.True(match.Success, warning);
        return match.Value;
    }

    [GeneratedRegex(@"(BEGIN; .*? COMMIT;|ALTER PUBLICATION [^;]*;)")]
    private static partial Regex FixSql();

    internal static WalPipelineOptions Options(string database) => new()
    {
        ConnectionString = database,
        SlotName = "sidecar_slot",
        PublicationName = Publication,
        Tables = new TableRegistry()
            .Add(new TableRegistration("items") { OwnerColumn = "owner_id" })
            .Add(new TableRegistration("notes") { ParentTable = "items", ParentForeignKeyColumn = "item_id" }),
    };

    private static async Task MigrateAsync(string connectionString)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await ChangelogSchema.EnsureAsync(connection);
    }

    private Task<string> DatabaseAsync(params string[] setup) => DatabaseAsync(postgres, setup);

    /// <summary>A database of <paramref name="server"/> with the registered tables, then <paramref name="setup"/>.</summary>
    internal static async Task<string> DatabaseAsync(PostgresServerFixture server, params string[] setup)
    {
        var database = await server.CreateDatabaseAsync("sidecar_checks");
        await Sql.ExecuteAsync(database, Tables);
        foreach (var sql in setup)
            await Sql.ExecuteAsync(database, sql);
        return database;
    }
}
