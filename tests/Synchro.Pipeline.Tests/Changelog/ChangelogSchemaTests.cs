using Npgsql;
using Synchro.Pipeline.Changelog;
using Synchro.Pipeline.Tests.Infrastructure;

namespace Synchro.Pipeline.Tests.Changelog;

[Collection(PostgresCollection.Name)]
public sealed class ChangelogSchemaTests(PostgresServerFixture postgres)
{
    private const string ColumnsSql = """
        SELECT table_name, column_name, data_type, is_nullable, column_default, collation_name
        FROM information_schema.columns
        WHERE table_schema = 'public'
        ORDER BY table_name, ordinal_position
        """;

    private const string IndexesSql = "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY indexname";

    private const string TablesSql = "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name";

    private static readonly string[] s_expectedColumns =
    [
        "sync_bucket_edges|table_name|text|NO|NULL|C",
        "sync_bucket_edges|record_id|text|NO|NULL|C",
        "sync_bucket_edges|bucket_id|text|NO|NULL|C",
        "sync_bucket_edges|updated_at|timestamp with time zone|NO|now()|NULL",
        "sync_bucket_horizons|bucket_id|text|NO|NULL|C",
        "sync_bucket_horizons|horizon_seq|bigint|NO|NULL|NULL",
        "sync_bucket_horizons|updated_at|timestamp with time zone|NO|now()|NULL",
        "sync_changelog|seq|bigint|NO|nextval('sync_changelog_seq_seq'::regclass)|NULL",
        "sync_changelog|bucket_id|text|NO|NULL|C",
        "sync_changelog|table_name|text|NO|NULL|C",
        "sync_changelog|record_id|text|NO|NULL|C",
        "sync_changelog|operation|smallint|NO|NULL|NULL",
        "sync_changelog|created_at|timestamp with time zone|NO|now()|NULL",
        "sync_compaction_state|id|smallint|NO|1|NULL",
        "sync_compaction_state|compacted_through_seq|bigint|NO|NULL|NULL",
        "sync_compaction_state|purged_through_seq|bigint|NO|NULL|NULL",
        "sync_compaction_state|updated_at|timestamp with time zone|NO|now()|NULL",
        "sync_prepared_transactions|slot_name|text|NO|NULL|NULL",
        "sync_prepared_transactions|gid|text|NO|NULL|NULL",
        "sync_prepared_transactions|chunk|integer|NO|NULL|NULL",
        "sync_prepared_transactions|data|bytea|NO|NULL|NULL",
        "sync_prepared_transactions|created_at|timestamp with time zone|NO|now()|NULL",
        "sync_rule_failures|id|bigint|NO|nextval('sync_rule_failures_id_seq'::regclass)|NULL",
        "sync_rule_failures|table_name|text|NO|NULL|NULL",
        "sync_rule_failures|record_id|text|NO|NULL|NULL",
        "sync_rule_failures|operation|smallint|NO|NULL|NULL",
        "sync_rule_failures|error_text|text|NO|NULL|NULL",
        "sync_rule_failures|payload|jsonb|YES|NULL|NULL",
        "sync_rule_failures|created_at|timestamp with time zone|NO|now()|NULL",
        "sync_transaction_skips|slot_name|text|NO|NULL|NULL",
        "sync_transaction_skips|commit_lsn|bigint|NO|NULL|NULL",
        "sync_transaction_skips|requested_at|timestamp with time zone|NO|now()|NULL",
        "sync_wal_position|slot_name|text|NO|NULL|NULL",
        "sync_wal_position|confirmed_lsn|bigint|NO|0|NULL",
        "sync_wal_position|updated_at|timestamp with time zone|NO|now()|NULL",
        "sync_wal_position|source_system_id|bigint|YES|NULL|NULL",
        "sync_wal_position|source_timeline|bigint|YES|NULL|NULL",
        "sync_wal_position|source_database_oid|bigint|YES|NULL|NULL",
        "sync_wal_position|source_database|text|YES|NULL|NULL",
    ];

    private static readonly string[] s_expectedIndexes =
    [
        "idx_sync_bucket_edges_bucket|CREATE INDEX idx_sync_bucket_edges_bucket ON public.sync_bucket_edges USING btree (bucket_id, table_name, record_id)",
        "idx_sync_changelog_bucket_seq|CREATE INDEX idx_sync_changelog_bucket_seq ON public.sync_changelog USING btree (bucket_id, seq)",
        "idx_sync_rule_failures_created|CREATE INDEX idx_sync_rule_failures_created ON public.sync_rule_failures USING btree (created_at)",
        "sync_bucket_edges_pkey|CREATE UNIQUE INDEX sync_bucket_edges_pkey ON public.sync_bucket_edges USING btree (table_name, record_id, bucket_id)",
        "sync_bucket_horizons_pkey|CREATE UNIQUE INDEX sync_bucket_horizons_pkey ON public.sync_bucket_horizons USING btree (bucket_id)",
        "sync_changelog_pkey|CREATE UNIQUE INDEX sync_changelog_pkey ON public.sync_changelog USING btree (seq)",
        "sync_compaction_state_pkey|CREATE UNIQUE INDEX sync_compaction_state_pkey ON public.sync_compaction_state USING btree (id)",
        "sync_prepared_transactions_pkey|CREATE UNIQUE INDEX sync_prepared_transactions_pkey ON public.sync_prepared_transactions USING btree (slot_name, gid, chunk)",
        "sync_rule_failures_pkey|CREATE UNIQUE INDEX sync_rule_failures_pkey ON public.sync_rule_failures USING btree (id)",
        "sync_transaction_skips_pkey|CREATE UNIQUE INDEX sync_transaction_skips_pkey ON public.sync_transaction_skips USING btree (slot_name)",
        "sync_wal_position_pkey|CREATE UNIQUE INDEX sync_wal_position_pkey ON public.sync_wal_position USING btree (slot_name)",
    ];

    [Fact]
    public async Task Creates_exactly_the_sidecar_tables_columns_and_indexes()
    {
        var connectionString = await postgres.CreateDatabaseAsync("schema_exact");
        await using var connection = await SidecarDatabase.OpenAsync(connectionString);

        await ChangelogSchema.EnsureAsync(connection);

        Assert.Equal(["sync_bucket_edges", "sync_bucket_horizons", "sync_changelog", "sync_compaction_state", "sync_prepared_transactions", "sync_rule_failures", "sync_transaction_skips", "sync_wal_position"], await SidecarDatabase.RowsAsync(connection, TablesSql));
        Assert.Equal(s_expectedColumns, await SidecarDatabase.RowsAsync(connection, ColumnsSql));
        Assert.Equal(s_expectedIndexes, await SidecarDatabase.RowsAsync(connection, IndexesSql));
    }

    [Fact]
    public async Task The_catalog_says_what_a_migration_would_create_so_that_run_migrates_only_then()
    {
        var connectionString = await postgres.CreateDatabaseAsync("schema_state");
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();

        var before = await ChangelogSchema.ReadStateAsync(connection, "public", CancellationToken.None);
        await ChangelogSchema.EnsureAsync(connection);
        var after = await ChangelogSchema.ReadStateAsync(connection, "public", CancellationToken.None);
        await Sql.ExecuteAsync(connectionString, "DROP INDEX idx_sync_rule_failures_created; ALTER TABLE sync_wal_position DROP COLUMN source_timeline, DROP COLUMN source_database");
        var older = await ChangelogSchema.ReadStateAsync(connection, "public", CancellationToken.None);
        var elsewhere = await ChangelogSchema.ReadStateAsync(connection, "tenant_b", CancellationToken.None);

        Assert.True(before is { SchemaExists: true, Empty: true, MigrationPending: true });
        Assert.Equal(11, before.Missing.Count);
        Assert.True(after is { Empty: false, MigrationPending: false, Missing: [], OtherSchemas: [] });
        Assert.Equal(["idx_sync_rule_failures_created", "sync_wal_position.source_timeline", "sync_wal_position.source_database"], older.Missing);
        Assert.False(older.Empty);
        Assert.True(elsewhere is { SchemaExists: false, Empty: true });
        Assert.Equal(["public"], elsewhere.OtherSchemas);
    }

    [Fact]
    public async Task Running_twice_changes_nothing_and_keeps_the_data()
    {
        var connectionString = await postgres.CreateDatabaseAsync("schema_twice");
        await using var connection = await SidecarDatabase.OpenAsync(connectionString);
        await ChangelogSchema.EnsureAsync(connection);
        await SidecarDatabase.ExecuteAsync(connection, "INSERT INTO sync_changelog (bucket_id, table_name, record_id, operation) VALUES ('global', 'public.t', '1', 1)");

        await ChangelogSchema.EnsureAsync(connection);

        Assert.Equal(s_expectedColumns, await SidecarDatabase.RowsAsync(connection, ColumnsSql));
        Assert.Equal(s_expectedIndexes, await SidecarDatabase.RowsAsync(connection, IndexesSql));
        Assert.Equal(1, await SidecarDatabase.CountAsync(connection, "sync_changelog"));
    }

    [Fact]
    public async Task A_position_table_of_the_reference_gains_the_source_columns_and_keeps_its_rows_unbound()
    {
        var connectionString = await postgres.CreateDatabaseAsync("schema_reference_position");
        await using var connection = await SidecarDatabase.OpenAsync(connectionString);
        // The Go reference's table, with a position it saved.
        await SidecarDatabase.ExecuteAsync(connection, "CREATE TABLE sync_wal_position (slot_name TEXT PRIMARY KEY, confirmed_lsn BIGINT NOT NULL DEFAULT 0, updated_at TIMESTAMPTZ NOT NULL DEFAULT now())");
        await SidecarDatabase.ExecuteAsync(connection, "INSERT INTO sync_wal_position (slot_name, confirmed_lsn) VALUES ('synchro', 123456)");
        Assert.Equal(new Synchro.Pipeline.Protocol.Lsn(123456), await ChangelogStore.LoadPositionAsync(connection, "synchro", default));

        await ChangelogSchema.EnsureAsync(connection);
        await ChangelogSchema.EnsureAsync(connection);

        Assert.Equal(s_expectedColumns, await SidecarDatabase.RowsAsync(connection, ColumnsSql));
        Assert.Equal(new PersistedPosition(new Synchro.Pipeline.Protocol.Lsn(123456), null), await ChangelogStore.LoadPersistedPositionAsync(connection, "synchro", default));
    }

    [Fact]
    public async Task A_migration_drops_the_references_record_index_and_keeps_the_rows()
    {
        var connectionString = await postgres.CreateDatabaseAsync("schema_reference_record_index");
        await using var connection = await SidecarDatabase.OpenAsync(connectionString);
        await ChangelogSchema.EnsureAsync(connection);
        // A changelog an older version (or the Go reference) created, with its (table_name, record_id) index.
        await SidecarDatabase.ExecuteAsync(connection, "CREATE INDEX idx_sync_changelog_record ON sync_changelog (table_name, record_id)");
        await SidecarDatabase.ExecuteAsync(connection, "INSERT INTO sync_changelog (bucket_id, table_name, record_id, operation) VALUES ('global', 'public.t', '1', 1)");

        await ChangelogSchema.EnsureAsync(connection);

        Assert.Equal(s_expectedIndexes, await SidecarDatabase.RowsAsync(connection, IndexesSql));
        Assert.Equal(1, await SidecarDatabase.CountAsync(connection, "sync_changelog"));
    }

    [Fact]
    public async Task A_second_migration_takes_no_lock_on_the_position_table()
    {
        var connectionString = await postgres.CreateDatabaseAsync("schema_position_lock");
        await using var connection = await SidecarDatabase.OpenAsync(connectionString);
        await ChangelogSchema.EnsureAsync(connection);
        // A writer of another slot holds its batch transaction open, with its position row updated.
        await using var writer = await SidecarDatabase.OpenAsync(connectionString);
        await using var transaction = await writer.BeginTransactionAsync();
        await SidecarDatabase.ExecuteAsync(writer, "INSERT INTO sync_wal_position (slot_name, confirmed_lsn) VALUES ('other', 1)");

        await using (var timeout = new NpgsqlCommand("SET lock_timeout = '2s'", connection))
            await timeout.ExecuteNonQueryAsync();
        await ChangelogSchema.EnsureAsync(connection);

        await transaction.CommitAsync();
        Assert.Equal(1, await SidecarDatabase.CountAsync(connection, "sync_wal_position"));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public async Task Concurrent_migrations_from_two_connections_both_succeed(int round)
    {
        // Without the advisory lock, racing CREATE TABLE IF NOT EXISTS fails with a unique violation in pg_type.
        var connectionString = await postgres.CreateDatabaseAsync($"schema_concurrent_{round}");
        await using var first = await SidecarDatabase.OpenAsync(connectionString);
        await using var second = await SidecarDatabase.OpenAsync(connectionString);

        await Task.WhenAll(
            Task.Run(() => ChangelogSchema.EnsureAsync(first)),
            Task.Run(() => ChangelogSchema.EnsureAsync(second)));

        Assert.Equal(s_expectedColumns, await SidecarDatabase.RowsAsync(first, ColumnsSql));
        Assert.Equal(s_expectedIndexes, await SidecarDatabase.RowsAsync(second, IndexesSql));
    }

    [Fact]
    public async Task A_connection_already_in_a_transaction_is_refused()
    {
        var connectionString = await postgres.CreateDatabaseAsync("schema_in_tx");
        await using var connection = await SidecarDatabase.OpenAsync(connectionString);
        await using var transaction = await connection.BeginTransactionAsync();

        await Assert.ThrowsAsync<InvalidOperationException>(() => ChangelogSchema.EnsureAsync(connection));
    }

    [Fact]
    public async Task A_failed_migration_leaves_nothing_behind()
    {
        var connectionString = await postgres.CreateDatabaseAsync("schema_failed");
        await using (var setup = await SidecarDatabase.OpenAsync(connectionString))
        {
            // A view under one of the names makes CREATE INDEX on it fail after the first tables exist.
            await SidecarDatabase.ExecuteAsync(setup, "CREATE VIEW sync_rule_failures AS SELECT 1 AS id");
        }
        await using var connection = await SidecarDatabase.OpenAsync(connectionString);

        await Assert.ThrowsAsync<PostgresException>(() => ChangelogSchema.EnsureAsync(connection));

        Assert.Equal(["sync_rule_failures"], await SidecarDatabase.RowsAsync(connection, TablesSql));
    }
}
