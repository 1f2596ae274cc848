using Microsoft.Extensions.Logging;
using Synchro.Pipeline.Changelog;
using Synchro.Pipeline.Maintenance;
using Synchro.Pipeline.Registry;
using Synchro.Pipeline.Tests.Cli;
using Synchro.Pipeline.Tests.Infrastructure;

namespace Synchro.Pipeline.Tests.Pipeline;

/// <summary>
/// The pipeline as the roles of docs/operations.md, none a superuser: a source role with REPLICATION and SELECT on the
/// registered tables, a changelog role with DML on the sidecar tables, an owner who runs <c>migrate</c>. Rules (a SQL
/// bucket function), parent lookups, the initial snapshot, TRUNCATE, heartbeats and the replay of rule failures all work
/// under them, <c>run</c> issues no DDL, and nothing planted earlier on the roles' search_path is used.
/// </summary>
[Collection(PostgresCollection.Name)]
[Trait(TestCategories.Name, TestCategories.VersionSensitive)]
public sealed class LeastPrivilegeTests(PostgresServerFixture postgres)
{
    private const string A1 = "00000000-0000-0000-0000-0000000000a1";
    private const string A2 = "00000000-0000-0000-0000-0000000000a2";

    private const int HeartbeatFailed = 4003;
    private const int ChangelogMigrated = 1030;
    private const int DatabaseNotSetUp = 1007;
    private const int OwnWritesNotTagged = 3005;

    // The rule: categories go to a bucket named after them; 'poison' has none until the rule is fixed.
    private const string Rule = """
        CREATE OR REPLACE FUNCTION public.category_buckets(table_name text, operation text, new_row jsonb, old_row jsonb) RETURNS SETOF text
        LANGUAGE plpgsql AS $$
        BEGIN
          IF new_row->>'name' = 'poison' AND NOT {0} THEN RAISE EXCEPTION 'no bucket for %', new_row->>'name'; END IF;
          RETURN NEXT 'category:' || (new_row->>'name');
        END $$;
        """;

    // Objects planted in a schema the roles' own search_path puts before pg_catalog and public: a lookalike rule function,
    // operators for the comparisons the pipeline makes, a lookalike sync_changelog. Each use is recorded in planted.calls.
    private const string PlantedCommon = """
        CREATE SCHEMA planted;
        GRANT USAGE ON SCHEMA planted TO PUBLIC;
        CREATE TABLE planted.calls (what text);
        GRANT INSERT, SELECT ON planted.calls TO PUBLIC;
        CREATE FUNCTION planted.text_eq(a text, b text) RETURNS boolean LANGUAGE plpgsql AS $$
        BEGIN INSERT INTO planted.calls VALUES ('text = text'); RETURN a OPERATOR(pg_catalog.=) b; END $$;
        CREATE OPERATOR planted.= (LEFTARG = text, RIGHTARG = text, FUNCTION = planted.text_eq);
        CREATE FUNCTION planted.name_eq(a name, b text) RETURNS boolean LANGUAGE plpgsql AS $$
        BEGIN INSERT INTO planted.calls VALUES ('name = text'); RETURN a OPERATOR(pg_catalog.=) b; END $$;
        CREATE OPERATOR planted.= (LEFTARG = name, RIGHTARG = text, FUNCTION = planted.name_eq);
        """;

    private const string PlantedInSource = """
        CREATE FUNCTION planted.category_buckets(table_name text, operation text, new_row jsonb, old_row jsonb) RETURNS SETOF text
        LANGUAGE plpgsql AS $$ BEGIN INSERT INTO planted.calls VALUES ('category_buckets'); RETURN NEXT 'planted'; END $$;
        """;

    private const string PlantedInChangelog = """
        CREATE TABLE planted.sync_changelog (
            seq bigserial PRIMARY KEY, bucket_id text, table_name text, record_id text, operation smallint, created_at timestamptz DEFAULT now());
        GRANT ALL ON planted.sync_changelog TO PUBLIC;
        GRANT ALL ON SEQUENCE planted.sync_changelog_seq_seq TO PUBLIC;
        """;

    [Fact]
    public async Task The_pipeline_runs_as_a_replication_role_and_a_dml_role_runs_no_ddl_and_uses_nothing_planted_on_their_search_path()
    {
        var source = await postgres.CreateDatabaseAsync("privilege_source");
        var changelog = await postgres.CreateDatabaseAsync("privilege_changelog");
        var roles = await PipelineRoles.CreateAsync(source);
        await Sql.ExecuteAsync(source, PipelineHarness.Schema + string.Format(Rule, "false") + $"""
            REVOKE EXECUTE ON FUNCTION public.category_buckets(text, text, jsonb, jsonb) FROM PUBLIC;
            {roles.SourceGrants("public.orders, public.order_lines, public.categories", "public.category_buckets(text, text, jsonb, jsonb)")}
            INSERT INTO orders (id, user_id) VALUES ('{A1}', 'alice');
            INSERT INTO order_lines VALUES (1, '{A1}', 1);
            """);
        // The owner owns the changelog database, and so the public schema the sidecar tables go to (pg_database_owner).
        await Sql.ExecuteAsync(changelog, $"ALTER DATABASE {Database(changelog)} OWNER TO {roles.Owner}");
        await Sql.ExecuteAsync(source, PlantedCommon + PlantedInSource
            + $"ALTER ROLE {roles.Source} IN DATABASE {Database(source)} SET search_path = planted, pg_catalog, public;");
        await Sql.ExecuteAsync(changelog, PlantedCommon + PlantedInChangelog
            + $"ALTER ROLE {roles.Changelog} IN DATABASE {Database(changelog)} SET search_path = planted, pg_catalog, public;");

        var logs = new RecordingLoggerFactory(LogLevel.Information);
        var options = new WalPipelineOptions
        {
            ConnectionString = PipelineRoles.As(source, roles.Source, applicationName: "least-privilege"),
            ChangelogConnectionString = PipelineRoles.As(changelog, roles.Changelog, applicationName: "least-privilege"),
            SlotName = "slot_least_privilege",
            PublicationName = PipelineHarness.Publication,
            Tables = new TableRegistry()
                .Add(new TableRegistration("orders") { OwnerColumn = "user_id" })
                .Add(new TableRegistration("order_lines") { ParentTable = "orders", ParentForeignKeyColumn = "order_id", SoftDeleteColumn = null })
                .Add(new TableRegistration("categories") { BucketFunction = "category_buckets" }),
            BatchLinger = TimeSpan.FromMilliseconds(5),
            StatusInterval = TimeSpan.FromSeconds(1),
            HeartbeatInterval = TimeSpan.FromMilliseconds(300),
            MaxReconnectDelay = TimeSpan.FromSeconds(1),
            LoggerFactory = logs,
        };
        await using var harness = PipelineHarness.Attach(source, options.SlotName, changelog);

        // Before migrate: the changelog role may not create the tables, and says who must.
        var refused = await Assert.ThrowsAsync<WalPipelineConfigurationException>(() => harness.StartAsync(options));
        Assert.StartsWith("The sidecar tables in schema \"public\" need a migration (missing: sync_changelog, sync_bucket_edges, sync_wal_position, sync_rule_failures, "
            + $"sync_prepared_transactions, sync_transaction_skips, sync_bucket_horizons, sync_compaction_state, idx_sync_changelog_bucket_seq, idx_sync_bucket_edges_bucket, idx_sync_rule_failures_created), and role \"{roles.Changelog}\" may not change the schema (permission denied for schema public). "
            + "Run synchro-pipeline migrate (or ChangelogSchema.EnsureAsync) as the schema's owner", refused.Message, StringComparison.Ordinal);
        Assert.Equal(0L, await Sql.ScalarAsync<long>(changelog, "SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace"));
        Assert.Equal(0L, await Sql.ScalarAsync<long>(source, $"SELECT count(*) FROM pg_replication_slots WHERE slot_name = '{options.SlotName}'"));

        // The owner migrates with the CLI and grants the changelog role its DML.
        var migrate = await CliProcess.RunAsync("migrate", "--connection", PipelineRoles.As(changelog, roles.Owner));
        Assert.True(migrate.ExitCode == 0, migrate.ToString());
        Assert.Contains("Migrated the sidecar tables in schema public on ", migrate.Output, StringComparison.Ordinal);
        Assert.Contains("Created 8 of 8 tables.", migrate.Output, StringComparison.Ordinal);
        await Sql.ExecuteAsync(PipelineRoles.As(changelog, roles.Owner), roles.ChangelogGrants("public"));

        // The initial snapshot, then rules, parent lookups, a rule failure, a TRUNCATE.
        await harness.StartAsync(options);
        Assert.Equal([$"order_lines 1 user:alice", $"orders {A1} user:alice"], await Sql.RowsAsync(changelog,
            "SELECT table_name || ' ' || record_id || ' ' || bucket_id FROM sync_bucket_edges ORDER BY 1"));
        await harness.ExecuteAsync($"""
            UPDATE orders SET user_id = 'bob' WHERE id = '{A1}';
            INSERT INTO orders (id, user_id) VALUES ('{A2}', 'carol');
            INSERT INTO order_lines VALUES (2, '{A2}', 5);
            INSERT INTO categories VALUES (1, 'books');
            """);
        await harness.WaitForChangelogAsync(5);
        await harness.ExecuteAsync("TRUNCATE categories");
        await harness.ExecuteAsync("INSERT INTO categories VALUES (3, 'films'), (2, 'poison')");
        string[] streamed =
        [
            $"user:bob orders {A1} 1",
            $"user:alice orders {A1} 3",
            $"user:carol orders {A2} 1",
            "user:carol order_lines 2 1",
            "category:books categories 1 1",
            // Line 1 follows its order to bob after the transaction's rows (CascadeParentMoves): the role reads order_lines for it.
            "user:bob order_lines 1 1",
            "user:alice order_lines 1 3",
            "category:books categories 1 3",
            "category:films categories 3 1",
        ];
        Assert.Equal(string.Join("\n", streamed), string.Join("\n", await harness.WaitForChangelogAsync(streamed.Length)));
        Assert.Equal(["categories 2 no bucket for poison"], await Sql.RowsAsync(changelog,
            "SELECT table_name || ' ' || record_id || ' ' || split_part(error_text, ': ', 2) FROM sync_rule_failures"));

        // Heartbeats, written as the source role, carry the idle slot's position past WAL another database wrote.
        await Sql.ExecuteAsync(changelog, "CREATE TABLE planted.noise AS SELECT 1 AS n");
        var noise = await OperationsSql.CurrentWalAsync(changelog);
        await OperationsSql.WaitUntilAsync(async () => await OperationsSql.PersistedAsync(changelog, options.SlotName) >= noise,
            "a heartbeat to move the persisted position past the other database's WAL", TimeSpan.FromSeconds(30), harness);

        // The fixed rule replays the failure, as the same roles, while the pipeline runs.
        await Sql.ExecuteAsync(source, string.Format(Rule, "true"));
        var replay = await new RuleFailureReplayer(options).ReplayAsync();
        Assert.Equal((1, 0), (replay.Replayed, replay.StillFailing));
        Assert.Equal([.. streamed, "category:poison categories 2 1"], await harness.WaitForChangelogAsync(streamed.Length + 1));
        Assert.Equal(0L, await Sql.ScalarAsync<long>(changelog, "SELECT count(*) FROM sync_rule_failures"));
        await harness.StopAsync();

        // Nothing planted was used, and run created nothing: the sidecar tables are the owner's.
        Assert.Empty(await Sql.RowsAsync(source, "SELECT what FROM planted.calls"));
        Assert.Empty(await Sql.RowsAsync(changelog, "SELECT what FROM planted.calls"));
        Assert.Equal(0L, await Sql.ScalarAsync<long>(changelog, "SELECT count(*) FROM planted.sync_changelog"));
        Assert.Equal([roles.Owner], await Sql.RowsAsync(changelog,
            "SELECT DISTINCT pg_get_userbyid(relowner)::text FROM pg_class WHERE relnamespace = 'public'::regnamespace"));
        Assert.DoesNotContain(logs.Entries, e => e.EventId.Id is HeartbeatFailed or ChangelogMigrated || (e.Level >= LogLevel.Error && e.EventId.Id != DatabaseNotSetUp));
    }

    [Fact]
    public async Task With_the_changelog_in_its_own_schema_of_the_source_database_its_writes_are_tagged_once_the_role_may_use_replication_origins()
    {
        var database = await postgres.CreateDatabaseAsync("privilege_same");
        var roles = await PipelineRoles.CreateAsync(database);
        await Sql.ExecuteAsync(database, PipelineHarness.Schema + roles.SourceGrants("public.orders, public.order_lines, public.categories")
            + $"CREATE SCHEMA synchro AUTHORIZATION {roles.Owner};");
        var owner = PipelineRoles.As(database, roles.Owner, searchPath: "synchro");
        await using (var connection = new Npgsql.NpgsqlConnection(owner))
        {
            await connection.OpenAsync();
            await ChangelogSchema.EnsureAsync(connection);
        }
        await Sql.ExecuteAsync(owner, roles.ChangelogGrants("synchro"));
        var options = new WalPipelineOptions
        {
            ConnectionString = PipelineRoles.As(database, roles.Source),
            ChangelogConnectionString = PipelineRoles.As(database, roles.Changelog, searchPath: "synchro"),
            SlotName = "slot_privilege_same",
            PublicationName = PipelineHarness.Publication,
            Tables = PipelineHarness.Registry(),
            BatchLinger = TimeSpan.FromMilliseconds(5),
            StatusInterval = TimeSpan.FromSeconds(1),
            MaxReconnectDelay = TimeSpan.FromSeconds(1),
        };
        await using var harness = PipelineHarness.Attach(database, options.SlotName, new Npgsql.NpgsqlConnectionStringBuilder(database) { SearchPath = "synchro" }.ConnectionString);

        // Without EXECUTE on the origin functions (superuser-only by default) the writes go untagged, with the GRANT to run.
        var untagged = new RecordingLoggerFactory();
        options.LoggerFactory = untagged;
        await harness.StartAsync(options);
        await harness.ExecuteAsync($"INSERT INTO orders (id, user_id) VALUES ('{A1}', 'alice')");
        await harness.WaitForChangelogAsync(1);
        await harness.StopAsync();
        var warning = Assert.Single(untagged.Entries, e => e.EventId.Id == OwnWritesNotTagged && e.Message.Contains($"synchro_pipeline.{options.SlotName} ", StringComparison.Ordinal));
        Assert.Contains("permission denied for function pg_replication_origin_create", warning.Message, StringComparison.Ordinal);
        Assert.Contains("As a superuser: GRANT EXECUTE ON FUNCTION pg_catalog.pg_replication_origin_create, pg_catalog.pg_replication_origin_oid, pg_catalog.pg_replication_origin_drop, "
            + $"pg_catalog.pg_replication_origin_session_setup, pg_catalog.pg_replication_origin_session_reset TO \"{roles.Changelog}\";", warning.Message, StringComparison.Ordinal);

        // With the optional grant, the writer works under its origin.
        await Sql.ExecuteAsync(database, roles.OriginGrants());
        var tagged = new RecordingLoggerFactory();
        options.LoggerFactory = tagged;
        await harness.StartAsync(options);
        await harness.ExecuteAsync($"INSERT INTO orders (id, user_id) VALUES ('{A2}', 'bob')");
        Assert.Equal([$"user:alice orders {A1} 1", $"user:bob orders {A2} 1"], await harness.WaitForChangelogAsync(2));
        // The origin's progress is the position of the writer's last commit under it.
        Assert.True(await harness.ScalarAsync<bool>($"SELECT s.local_lsn <> '0/0' FROM pg_replication_origin_status s JOIN pg_replication_origin o ON o.roident = s.local_id WHERE o.roname = 'synchro_pipeline.{options.SlotName}'"));
        await harness.StopAsync();
        Assert.DoesNotContain(tagged.Entries, e => e.EventId.Id == OwnWritesNotTagged);
        Assert.Equal([roles.Owner], await Sql.RowsAsync(database,
            "SELECT DISTINCT pg_get_userbyid(relowner)::text FROM pg_class WHERE relnamespace = 'synchro'::regnamespace"));
    }

    private static string Database(string connectionString) => new Npgsql.NpgsqlConnectionStringBuilder(connectionString).Database!;
}
