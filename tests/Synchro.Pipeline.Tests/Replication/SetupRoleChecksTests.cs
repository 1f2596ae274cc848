using Synchro.Pipeline.Changelog;
using Synchro.Pipeline.Tests.Infrastructure;
using Synchro.Pipeline.Tests.Pipeline;

namespace Synchro.Pipeline.Tests.Replication;

/// <summary>
/// <c>check</c> (<see cref="WalPipeline.CheckAsync"/>) on the roles of docs/setup.md: a source role without REPLICATION or
/// without SELECT on a registered table, a changelog role without DML on the sidecar tables; each named with the statement
/// that fixes it, and quiet once it ran.
/// </summary>
[Collection(PostgresCollection.Name)]
[Trait(TestCategories.Name, TestCategories.VersionSensitive)]
public sealed class SetupRoleChecksTests(PostgresServerFixture postgres)
{
    [Fact]
    public async Task A_source_role_without_replication_or_select_is_named_with_the_alter_role_and_the_grant()
    {
        var database = await postgres.CreateDatabaseAsync("setup_source_role");
        var role = "setup_plain_" + Guid.NewGuid().ToString("N")[..10];
        await Sql.ExecuteAsync(database, PipelineHarness.Schema + $"""
            CREATE ROLE {role} LOGIN PASSWORD '{PipelineRoles.Password}';
            GRANT SELECT ON orders, order_lines TO {role};
            """);
        var options = Options(PipelineRoles.As(database, role), slot: "slot_setup_source_role");

        var refused = await Assert.ThrowsAsync<WalPipelineConfigurationException>(() => WalPipeline.CheckAsync(options));

        Assert.Contains($"Role \"{role}\" may not replicate: it has neither the REPLICATION attribute nor superuser, so it can neither create the slot "
            + $"nor stream from it. Grant it, as a superuser: ALTER ROLE \"{role}\" WITH REPLICATION;", refused.Errors);
        Assert.Contains($"Role \"{role}\" lacks SELECT on \"public\".\"categories\": the initial snapshot, parent lookups, unchanged TOAST values and SQL bucket rules "
            + $"read the registered tables as this role. As their owner: GRANT SELECT ON \"public\".\"categories\" TO \"{role}\";", refused.Errors);
        Assert.Equal(2, refused.Errors.Count);

        // The two fixes the errors give, and check is quiet about both.
        await Sql.ExecuteAsync(database, $"ALTER ROLE \"{role}\" WITH REPLICATION; GRANT SELECT ON \"public\".\"categories\" TO \"{role}\";");
        var warnings = await WalPipeline.CheckAsync(options);
        Assert.DoesNotContain(warnings, w => w.Contains(role, StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_source_role_without_usage_on_the_tables_schema_is_given_the_schema_grant()
    {
        var database = await postgres.CreateDatabaseAsync("setup_schema_usage");
        var role = "setup_schema_" + Guid.NewGuid().ToString("N")[..10];
        await Sql.ExecuteAsync(database, $"""
            CREATE ROLE {role} LOGIN REPLICATION PASSWORD '{PipelineRoles.Password}';
            CREATE SCHEMA app;
            CREATE TABLE app.items (id int PRIMARY KEY, user_id text, deleted_at timestamptz);
            CREATE PUBLICATION synchro_pub FOR TABLE app.items;
            GRANT SELECT ON app.items TO {role};
            """);
        var options = new WalPipelineOptions
        {
            ConnectionString = PipelineRoles.As(database, role),
            ChangelogConnectionString = database,
            SlotName = "slot_setup_schema_usage",
            PublicationName = PipelineHarness.Publication,
            Tables = new Registry.TableRegistry().Add(new Registry.TableRegistration("app.items") { OwnerColumn = "user_id" }),
        };

        var refused = await Assert.ThrowsAsync<WalPipelineConfigurationException>(() => WalPipeline.CheckAsync(options));

        var error = Assert.Single(refused.Errors);
        Assert.StartsWith($"Role \"{role}\" lacks USAGE on schema \"app\": ", error, StringComparison.Ordinal);
        Assert.EndsWith($"As their owner: GRANT USAGE ON SCHEMA \"app\" TO \"{role}\";", error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_changelog_role_without_dml_on_the_sidecar_tables_is_named_with_the_grants_at_check_and_at_start()
    {
        var source = await postgres.CreateDatabaseAsync("setup_changelog_source");
        var changelog = await postgres.CreateDatabaseAsync("setup_changelog_role");
        var roles = await PipelineRoles.CreateAsync(source);
        await Sql.ExecuteAsync(source, PipelineHarness.Schema + roles.SourceGrants("public.orders, public.order_lines, public.categories"));
        await Sql.ExecuteAsync(changelog, $"ALTER DATABASE \"{new Npgsql.NpgsqlConnectionStringBuilder(changelog).Database}\" OWNER TO {roles.Owner}");
        var owner = PipelineRoles.As(changelog, roles.Owner);
        await using (var connection = new Npgsql.NpgsqlConnection(owner))
        {
            await connection.OpenAsync();
            await ChangelogSchema.EnsureAsync(connection);
        }
        // The grants of docs/setup.md short of DELETE on the changelog and of the sequences.
        await Sql.ExecuteAsync(owner, $"""
            GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {roles.Changelog};
            REVOKE DELETE ON sync_changelog FROM {roles.Changelog};
            """);
        var options = Options(PipelineRoles.As(source, roles.Source), "slot_setup_changelog_role", PipelineRoles.As(changelog, roles.Changelog));

        var refused = await Assert.ThrowsAsync<WalPipelineConfigurationException>(() => WalPipeline.CheckAsync(options));
        var started = await Assert.ThrowsAsync<WalPipelineConfigurationException>(async () =>
        {
            await using var pipeline = new WalPipeline(options);
            await pipeline.RunAsync();
        });

        var expected = $"Role \"{roles.Changelog}\" of the changelog connection lacks DELETE on \"public\".\"sync_changelog\"; USAGE on the sequences "
            + "\"public\".\"sync_changelog_seq_seq\", \"public\".\"sync_rule_failures_id_seq\": the pipeline reads, writes and deletes rows of every sidecar table "
            + "(the writer, compaction, replay-failures). As the tables' owner (the role that ran migrate): "
            + $"GRANT DELETE ON \"public\".\"sync_changelog\" TO \"{roles.Changelog}\"; "
            + $"GRANT USAGE ON SEQUENCE \"public\".\"sync_changelog_seq_seq\", \"public\".\"sync_rule_failures_id_seq\" TO \"{roles.Changelog}\";";
        Assert.Equal([expected], refused.Errors);
        Assert.Equal([expected], started.Errors);
        // The start stopped before creating anything on the source.
        Assert.Equal(0L, await Sql.ScalarAsync<long>(source, "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'slot_setup_changelog_role'"));

        await Sql.ExecuteAsync(owner, $"""
            GRANT DELETE ON "public"."sync_changelog" TO "{roles.Changelog}";
            GRANT USAGE ON SEQUENCE "public"."sync_changelog_seq_seq", "public"."sync_rule_failures_id_seq" TO "{roles.Changelog}";
            """);
        var warnings = await WalPipeline.CheckAsync(options);
        Assert.DoesNotContain(warnings, w => w.Contains(roles.Changelog, StringComparison.Ordinal));
    }

    private static WalPipelineOptions Options(string source, string slot, string? changelog = null) => new()
    {
        ConnectionString = source,
        ChangelogConnectionString = changelog,
        SlotName = slot,
        PublicationName = PipelineHarness.Publication,
        Tables = PipelineHarness.Registry(),
        MaxReconnectDelay = TimeSpan.FromSeconds(1),
    };
}
