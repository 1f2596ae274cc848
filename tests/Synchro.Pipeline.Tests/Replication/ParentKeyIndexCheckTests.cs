using Microsoft.Extensions.Logging;
using Synchro.Pipeline.Registry;
using Synchro.Pipeline.Tests.Infrastructure;
using Synchro.Pipeline.Tests.Pipeline;

namespace Synchro.Pipeline.Tests.Replication;

/// <summary>
/// A parent's children are found by its foreign key in the child table; <c>check</c> and <c>run</c> warn, with the statement that
/// adds it, when no index serves that lookup. The catalog side is in <see cref="StartupChecksTests"/>.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class ParentKeyIndexCheckTests(PostgresServerFixture postgres)
{
    private const string NoIndex = "has no index that starts with";

    [Fact]
    public async Task Check_and_run_warn_about_the_harness_child_table_once_its_index_is_dropped()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "parent_key_index");
        var indexed = await WalPipeline.CheckAsync(harness.Options());
        await harness.ExecuteAsync("DROP INDEX order_lines_order_id");
        var logs = new RecordingLoggerFactory();
        var options = harness.Options();
        options.LoggerFactory = logs;

        var check = await WalPipeline.CheckAsync(options);
        await harness.StartAsync(options);

        Assert.DoesNotContain(indexed, w => w.Contains(NoIndex, StringComparison.Ordinal));
        var warning = Assert.Single(check, w => w.Contains(NoIndex, StringComparison.Ordinal));
        Assert.StartsWith("Table \"public\".\"order_lines\" has no index that starts with its parent foreign key column \"order_id\". When a record of its parent table "
            + "\"public\".\"orders\" changes buckets", warning, StringComparison.Ordinal);
        Assert.EndsWith("CREATE INDEX CONCURRENTLY ON \"public\".\"order_lines\" (\"order_id\");", warning, StringComparison.Ordinal);
        var logged = Assert.Single(logs.Entries, e => e.Message.Contains(NoIndex, StringComparison.Ordinal));
        Assert.Equal((1003, LogLevel.Warning, warning), (logged.EventId.Id, logged.Level, logged.Message));
    }

    [Fact]
    public async Task Every_level_of_a_composite_parent_chain_is_checked_against_its_own_parent()
    {
        var database = await postgres.CreateDatabaseAsync("parent_key_chain");
        await Sql.ExecuteAsync(database, """
            CREATE SCHEMA app;
            CREATE TABLE app."Docs" (tenant_id int, id int, owner text, PRIMARY KEY (tenant_id, id));
            CREATE TABLE app.pages (tenant_id int, id int, doc_id int, PRIMARY KEY (tenant_id, id), FOREIGN KEY (tenant_id, doc_id) REFERENCES app."Docs");
            CREATE INDEX pages_doc ON app.pages (doc_id, tenant_id);
            CREATE TABLE app.notes (id int PRIMARY KEY, tenant_id int, page_id int, FOREIGN KEY (tenant_id, page_id) REFERENCES app.pages);
            CREATE PUBLICATION chain_pub FOR TABLE app."Docs", app.pages, app.notes;
            """);
        var options = new WalPipelineOptions
        {
            ConnectionString = database,
            SlotName = "parent_key_chain",
            PublicationName = "chain_pub",
            Tables = new TableRegistry()
                .Add(new TableRegistration("app.Docs") { IdColumns = ["tenant_id", "id"], OwnerColumn = "owner", SoftDeleteColumn = null })
                .Add(new TableRegistration("app.pages") { IdColumns = ["tenant_id", "id"], ParentTable = "app.Docs", ParentForeignKeyColumns = ["tenant_id", "doc_id"], SoftDeleteColumn = null })
                .Add(new TableRegistration("app.notes") { ParentTable = "app.pages", ParentForeignKeyColumns = ["tenant_id", "page_id"], SoftDeleteColumn = null }),
        };

        var warning = Assert.Single(await WalPipeline.CheckAsync(options), w => w.Contains(NoIndex, StringComparison.Ordinal));

        Assert.StartsWith("Table \"app\".\"notes\" has no index that starts with its parent foreign key columns (\"tenant_id\", \"page_id\"). When a record of its "
            + "parent table \"app\".\"pages\" changes buckets", warning, StringComparison.Ordinal);
        Assert.EndsWith("CREATE INDEX CONCURRENTLY ON \"app\".\"notes\" (\"tenant_id\", \"page_id\");", warning, StringComparison.Ordinal);
        await Sql.ExecuteAsync(database, warning[warning.LastIndexOf("CREATE INDEX", StringComparison.Ordinal)..]);
        Assert.DoesNotContain(await WalPipeline.CheckAsync(options), w => w.Contains(NoIndex, StringComparison.Ordinal));
    }
}
