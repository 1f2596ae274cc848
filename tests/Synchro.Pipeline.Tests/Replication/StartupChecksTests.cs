using Npgsql;
using Synchro.Pipeline.Replication;
using Synchro.Pipeline.Tests.Infrastructure;
using Synchro.Pipeline.Postgres;

namespace Synchro.Pipeline.Tests.Replication;

[Collection(PostgresCollection.Name)]
[Trait(TestCategories.Name, TestCategories.VersionSensitive)]
public sealed class StartupChecksTests(PostgresServerFixture postgres)
{
    private const string Publication = "sync_pub";

    private const string Tables = """
        CREATE TABLE items (id bigint PRIMARY KEY, owner_id text, deleted_at timestamptz);
        CREATE TABLE notes (id uuid PRIMARY KEY, item_id bigint REFERENCES items, body text, deleted_at timestamptz);
        CREATE INDEX notes_item_id ON notes (item_id);
        CREATE TABLE other (id bigint PRIMARY KEY);
        """;

    private static readonly RegisteredTable s_items = new("public", "items", "id", ["id", "owner_id", "deleted_at"]);
    private static readonly RegisteredTable s_notes = new("public", "notes", "id", ["id", "item_id", "deleted_at"]) { ParentForeignKey = ["item_id"], Parent = ("public", "items") };
    private static readonly RegisteredTable[] s_registered = [s_items, s_notes];

    [Fact]
    public async Task A_good_setup_passes_without_warnings_and_reports_the_slot_missing()
    {
        var database = await GoodDatabaseAsync();

        var result = await CheckAsync(database, TestSlots.NewName("checks"));

        Assert.Empty(result.Warnings);
        Assert.False(result.SlotExists);
    }

    [Fact]
    public async Task A_good_setup_with_its_pgoutput_slot_passes_and_reports_the_slot()
    {
        var database = await GoodDatabaseAsync();
        var slot = TestSlots.NewName("checks");
        Assert.True(await ReplicationSlots.CreateIfMissingAsync(database, slot, twoPhase: false, CancellationToken.None));

        try
        {
            var result = await CheckAsync(database, slot);

            Assert.Empty(result.Warnings);
            Assert.True(result.SlotExists);
        }
        finally
        {
            await ReplicationSlots.DropAsync(database, slot, CancellationToken.None);
        }
    }

    [Fact]
    public async Task The_checks_open_a_closed_connection()
    {
        var database = await GoodDatabaseAsync();
        await using var connection = new NpgsqlConnection(database);

        var result = await StartupChecks.RunAsync(connection, TestSlots.NewName("checks"), Publication, s_registered, busySendersFail: true, CancellationToken.None);

        Assert.Empty(result.Warnings);
    }

    [Fact]
    public async Task A_missing_publication_is_an_error_with_a_create_publication_fix()
    {
        var database = await DatabaseAsync(Tables);

        var error = await CheckFailsAsync(database);

        var message = Assert.Single(error.Errors);
        Assert.Contains("Publication \"sync_pub\" does not exist", message, StringComparison.Ordinal);
        Assert.Contains("CREATE PUBLICATION \"sync_pub\" FOR TABLE \"public\".\"items\", \"public\".\"notes\";", message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_publication_lacking_one_registered_table_is_a_warning()
    {
        var database = await DatabaseAsync(Tables, "CREATE PUBLICATION sync_pub FOR TABLE items");

        var result = await CheckAsync(database, TestSlots.NewName("checks"));

        var warning = Assert.Single(result.Warnings);
        Assert.Contains("does not include table \"public\".\"notes\"", warning, StringComparison.Ordinal);
        Assert.Contains("ALTER PUBLICATION \"sync_pub\" ADD TABLE \"public\".\"notes\";", warning, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_publication_lacking_every_registered_table_is_an_error()
    {
        var database = await DatabaseAsync(Tables, "CREATE PUBLICATION sync_pub FOR TABLE other");

        var error = await CheckFailsAsync(database);

        var message = Assert.Single(error.Errors);
        Assert.Contains("includes none of the registered tables", message, StringComparison.Ordinal);
        Assert.Contains("ALTER PUBLICATION \"sync_pub\" ADD TABLE \"public\".\"items\", \"public\".\"notes\";", message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("CREATE PUBLICATION sync_pub FOR ALL TABLES")]
    [InlineData("CREATE PUBLICATION sync_pub FOR TABLES IN SCHEMA public")]
    public async Task A_publication_covering_tables_without_naming_them_passes(string createPublication)
    {
        var database = await DatabaseAsync(Tables, createPublication);

        var result = await CheckAsync(database, TestSlots.NewName("checks"));

        Assert.Empty(result.Warnings);
    }

    [Fact]
    public async Task A_publication_that_does_not_publish_deletes_is_an_error()
    {
        var database = await DatabaseAsync(Tables, "CREATE PUBLICATION sync_pub FOR TABLE items, notes WITH (publish = 'insert, update')");

        var error = await CheckFailsAsync(database);

        var message = Assert.Single(error.Errors);
        Assert.Contains("does not publish delete changes", message, StringComparison.Ordinal);
        Assert.Contains("ALTER PUBLICATION \"sync_pub\" SET (publish = 'insert, update, delete, truncate');", message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_publication_that_does_not_publish_truncate_is_a_warning()
    {
        var database = await DatabaseAsync(Tables, "CREATE PUBLICATION sync_pub FOR TABLE items, notes WITH (publish = 'insert, update, delete')");

        var result = await CheckAsync(database, TestSlots.NewName("checks"));

        var warning = Assert.Single(result.Warnings);
        Assert.Equal(
            "Publication \"sync_pub\" does not publish TRUNCATE, so clients would keep the rows of a truncated table; "
            + "run ALTER PUBLICATION \"sync_pub\" SET (publish = 'insert, update, delete, truncate');",
            warning);
    }

    [Fact]
    public async Task A_column_list_leaving_out_a_required_column_is_an_error()
    {
        var database = await DatabaseAsync(Tables, "CREATE PUBLICATION sync_pub FOR TABLE items (id, deleted_at), notes");

        var error = await CheckFailsAsync(database);

        var message = Assert.Single(error.Errors);
        Assert.Contains("publishes table \"public\".\"items\" with a column list that leaves out \"owner_id\"", message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_missing_table_is_an_error()
    {
        var database = await GoodDatabaseAsync();
        var ghost = new RegisteredTable("public", "ghosts", "id", ["id"]);

        var error = await CheckFailsAsync(database, tables: [s_items, s_notes, ghost]);

        var message = Assert.Single(error.Errors);
        Assert.Contains("Table \"public\".\"ghosts\" does not exist in database", message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Table_names_are_matched_exactly()
    {
        var database = await GoodDatabaseAsync();
        var upperCase = new RegisteredTable("public", "Items", "id", ["id"]);

        var error = await CheckFailsAsync(database, tables: [s_items, upperCase]);

        Assert.Contains(error.Errors, e => e.Contains("Table \"public\".\"Items\" does not exist", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_view_is_not_a_table()
    {
        var database = await DatabaseAsync(Tables, "CREATE VIEW item_view AS SELECT * FROM items", "CREATE PUBLICATION sync_pub FOR TABLE items, notes");

        var error = await CheckFailsAsync(database, tables: [s_items, new RegisteredTable("public", "item_view", "id", ["id"])]);

        var message = Assert.Single(error.Errors);
        Assert.Contains("\"public\".\"item_view\" is a view, not a table", message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_missing_column_is_an_error_naming_table_and_column()
    {
        var database = await GoodDatabaseAsync();
        var withParent = s_notes with { RequiredColumns = ["id", "item_id", "deleted_at", "parent_id"] };

        var error = await CheckFailsAsync(database, tables: [s_items, withParent]);

        var message = Assert.Single(error.Errors);
        Assert.Contains("Table \"public\".\"notes\" has no column \"parent_id\"", message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_missing_id_column_is_reported_once()
    {
        var database = await GoodDatabaseAsync();
        var wrongId = s_items with { IdColumns = ["item_id"] };

        var error = await CheckFailsAsync(database, tables: [wrongId, s_notes]);

        var message = Assert.Single(error.Errors);
        Assert.Contains("Table \"public\".\"items\" has no column \"item_id\"", message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Replica_identity_nothing_is_an_error()
    {
        var database = await GoodDatabaseAsync("ALTER TABLE items REPLICA IDENTITY NOTHING");

        var error = await CheckFailsAsync(database);

        var message = Assert.Single(error.Errors);
        Assert.Contains("Table \"public\".\"items\" has REPLICA IDENTITY NOTHING", message, StringComparison.Ordinal);
        Assert.Contains("ALTER TABLE \"public\".\"items\" REPLICA IDENTITY FULL", message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Default_replica_identity_without_a_primary_key_is_an_error()
    {
        // The id is unique (an index), but with no primary key the default identity carries nothing.
        var database = await DatabaseAsync(
            "CREATE TABLE items (id bigint NOT NULL, owner_id text, deleted_at timestamptz)",
            "CREATE UNIQUE INDEX items_id ON items (id)",
            "CREATE PUBLICATION sync_pub FOR TABLE items");

        var error = await CheckFailsAsync(database, tables: [s_items]);

        var message = Assert.Single(error.Errors);
        Assert.Contains("Table \"public\".\"items\" has no primary key and REPLICA IDENTITY DEFAULT", message, StringComparison.Ordinal);
        Assert.Contains("ALTER TABLE \"public\".\"items\" ADD PRIMARY KEY (\"id\")", message, StringComparison.Ordinal);
        Assert.Contains("ALTER TABLE \"public\".\"items\" REPLICA IDENTITY FULL", message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_id_column_outside_a_different_primary_key_is_an_error()
    {
        var database = await DatabaseAsync(
            "CREATE TABLE items (code text PRIMARY KEY, id bigint UNIQUE NOT NULL, owner_id text, deleted_at timestamptz)",
            "CREATE PUBLICATION sync_pub FOR TABLE items");

        var error = await CheckFailsAsync(database, tables: [s_items]);

        var message = Assert.Single(error.Errors);
        Assert.Contains("primary key (\"code\"), which does not include the id column \"id\"", message, StringComparison.Ordinal);
        Assert.Contains("ALTER TABLE \"public\".\"items\" REPLICA IDENTITY FULL", message, StringComparison.Ordinal);
        Assert.Contains("make \"id\" part of the primary key", message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_id_column_inside_a_composite_primary_key_is_not_unique_and_the_error_names_the_key_to_register()
    {
        // The multi-tenant table: rows (1, 7) and (2, 7) would share the record id 7.
        var database = await DatabaseAsync(
            "CREATE TABLE items (tenant int, id bigint, owner_id text, deleted_at timestamptz, PRIMARY KEY (tenant, id))",
            "CREATE PUBLICATION sync_pub FOR TABLE items");

        var error = await CheckFailsAsync(database, tables: [s_items]);

        Assert.Equal(
            "Table \"public\".\"items\": its id column \"id\" is not unique: no primary key or unique index is on it alone. Two rows could then share "
            + "a record id, and the changes of one would be written as the other's (a delete of one would take the other out of its buckets). "
            + "Register the table with IdColumns [\"tenant\", \"id\"], the columns of its primary key (\"tenant\", \"id\") (its record ids then name one "
            + "row each); or give the table a primary key or unique index on the id column(s) it is registered with.",
            Assert.Single(error.Errors));

        // Registered as the message says, it passes.
        var composite = s_items with { IdColumns = ["tenant", "id"], RequiredColumns = ["tenant", "id", "owner_id", "deleted_at"] };
        Assert.Empty((await CheckAsync(database, TestSlots.NewName("checks"), tables: [composite])).Warnings);
    }

    [Fact]
    public async Task A_composite_id_is_unique_through_a_unique_index_on_some_of_its_columns()
    {
        var database = await DatabaseAsync(
            "CREATE TABLE items (tenant int NOT NULL, id bigint NOT NULL, owner_id text, deleted_at timestamptz)",
            "CREATE UNIQUE INDEX items_id ON items (id)",
            "ALTER TABLE items REPLICA IDENTITY FULL",
            "CREATE PUBLICATION sync_pub FOR TABLE items");
        var composite = s_items with { IdColumns = ["tenant", "id"] };

        Assert.Empty((await CheckAsync(database, TestSlots.NewName("checks"), tables: [composite])).Warnings);
    }

    [Fact]
    public async Task A_composite_id_without_any_key_is_an_error_with_the_statement_that_adds_one()
    {
        var database = await DatabaseAsync(
            "CREATE TABLE items (tenant int, id bigint, owner_id text, deleted_at timestamptz)",
            "CREATE UNIQUE INDEX items_owner ON items (owner_id)",
            "CREATE INDEX items_tenant_id ON items (tenant, id)",
            "CREATE UNIQUE INDEX items_lower ON items (tenant, lower(owner_id))",
            "ALTER TABLE items REPLICA IDENTITY FULL",
            "CREATE PUBLICATION sync_pub FOR TABLE items");
        var composite = s_items with { IdColumns = ["tenant", "id"] };

        var message = Assert.Single((await CheckFailsAsync(database, tables: [composite])).Errors);

        Assert.StartsWith("Table \"public\".\"items\": its record id (columns \"tenant\", \"id\") is not unique: no primary key or unique index is on those columns or some of them.", message, StringComparison.Ordinal);
        // owner_id may be NULL, so its index is no key to offer.
        Assert.EndsWith("Give the table a key on the id column(s): ALTER TABLE \"public\".\"items\" ADD PRIMARY KEY (\"tenant\", \"id\") "
            + "(or CREATE UNIQUE INDEX ON \"public\".\"items\" (\"tenant\", \"id\") with NOT NULL columns), or register the columns of an existing key.", message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("CREATE UNIQUE INDEX items_key ON items (tenant, id) WHERE deleted_at IS NULL", "the unique index \"items_key\" on (\"tenant\", \"id\") is partial")]
    [InlineData("ALTER TABLE items ADD CONSTRAINT items_key UNIQUE (tenant, id) DEFERRABLE", "the unique index \"items_key\" on (\"tenant\", \"id\") is DEFERRABLE")]
    [InlineData("CREATE UNIQUE INDEX items_key ON items (tenant, id)", "the unique index \"items_key\" on (\"tenant\", \"id\") allows NULL in \"tenant\", and rows with NULL there are not kept unique")]
    public async Task A_unique_index_that_does_not_keep_every_row_unique_is_refused_with_its_reason(string index, string reason)
    {
        var database = await DatabaseAsync(
            "CREATE TABLE items (tenant int, id bigint NOT NULL, owner_id text, deleted_at timestamptz)",
            index,
            "ALTER TABLE items REPLICA IDENTITY FULL",
            "CREATE PUBLICATION sync_pub FOR TABLE items");
        var composite = s_items with { IdColumns = ["tenant", "id"] };

        var message = Assert.Single((await CheckFailsAsync(database, tables: [composite])).Errors);

        Assert.Contains($"is not unique: {reason}", message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_nullable_composite_key_passes_with_nulls_not_distinct_and_a_nullable_single_id_does_not()
    {
        var database = await DatabaseAsync(
            "CREATE TABLE items (tenant int, id bigint, owner_id text, deleted_at timestamptz)",
            "CREATE UNIQUE INDEX items_key ON items (tenant, id) NULLS NOT DISTINCT",
            "CREATE UNIQUE INDEX items_id ON items (id)",
            "ALTER TABLE items REPLICA IDENTITY FULL",
            "CREATE PUBLICATION sync_pub FOR TABLE items");
        var composite = s_items with { IdColumns = ["tenant", "id"] };

        Assert.Empty((await CheckAsync(database, TestSlots.NewName("checks"), tables: [composite])).Warnings);

        var message = Assert.Single((await CheckFailsAsync(database, tables: [s_items])).Errors);
        Assert.Contains("its id column \"id\" is not unique: the unique index \"items_id\" on (\"id\") allows NULL in \"id\", and a NULL id names no record", message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Every_id_column_must_be_in_the_replica_identity()
    {
        var database = await DatabaseAsync(
            "CREATE TABLE items (tenant int NOT NULL, region int NOT NULL, id bigint PRIMARY KEY, owner_id text, deleted_at timestamptz)",
            "CREATE PUBLICATION sync_pub FOR TABLE items");
        var composite = s_items with { IdColumns = ["tenant", "region", "id"] };

        var message = Assert.Single((await CheckFailsAsync(database, tables: [composite])).Errors);

        Assert.Equal("The replica identity of table \"public\".\"items\" is its primary key (\"id\"), which does not include the id columns \"tenant\", \"region\", "
            + "so its deletes carry no id; run ALTER TABLE \"public\".\"items\" REPLICA IDENTITY FULL, or make \"tenant\", \"region\" part of the primary key.", message);
    }

    [Fact]
    public async Task An_identity_index_passes_when_it_holds_the_id_and_fails_when_it_does_not()
    {
        var database = await DatabaseAsync(
            "CREATE TABLE items (code text PRIMARY KEY, id bigint NOT NULL, owner_id text NOT NULL, deleted_at timestamptz)",
            "CREATE UNIQUE INDEX items_id ON items (id)",
            "CREATE UNIQUE INDEX items_owner ON items (owner_id)",
            "ALTER TABLE items REPLICA IDENTITY USING INDEX items_id",
            "CREATE PUBLICATION sync_pub FOR TABLE items");

        Assert.Empty((await CheckAsync(database, TestSlots.NewName("checks"), tables: [s_items])).Warnings);

        await Sql.ExecuteAsync(database, "ALTER TABLE items REPLICA IDENTITY USING INDEX items_owner");
        var error = await CheckFailsAsync(database, tables: [s_items]);

        var message = Assert.Single(error.Errors);
        Assert.Contains("replica identity index (\"owner_id\"), which does not include the id column \"id\"", message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_dropped_identity_index_is_an_error()
    {
        var database = await DatabaseAsync(
            "CREATE TABLE items (id bigint NOT NULL UNIQUE, owner_id text, deleted_at timestamptz)",
            "CREATE UNIQUE INDEX items_id ON items (id)",
            "ALTER TABLE items REPLICA IDENTITY USING INDEX items_id",
            "DROP INDEX items_id",
            "CREATE PUBLICATION sync_pub FOR TABLE items");

        var error = await CheckFailsAsync(database, tables: [s_items]);

        var message = Assert.Single(error.Errors);
        Assert.Contains("REPLICA IDENTITY USING INDEX but that index no longer exists", message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Replica_identity_full_passes_without_a_primary_key_when_the_id_is_unique()
    {
        var database = await DatabaseAsync(
            "CREATE TABLE items (id bigint NOT NULL UNIQUE, owner_id text, deleted_at timestamptz)",
            "ALTER TABLE items REPLICA IDENTITY FULL",
            "CREATE PUBLICATION sync_pub FOR TABLE items");

        var result = await CheckAsync(database, TestSlots.NewName("checks"), tables: [s_items]);

        Assert.Empty(result.Warnings);
    }

    [Fact]
    public async Task Replica_identity_full_without_any_key_is_an_error_because_the_id_is_not_unique()
    {
        var database = await DatabaseAsync(
            "CREATE TABLE items (id bigint, owner_id text, deleted_at timestamptz)",
            "ALTER TABLE items REPLICA IDENTITY FULL",
            "CREATE PUBLICATION sync_pub FOR TABLE items");

        var message = Assert.Single((await CheckFailsAsync(database, tables: [s_items])).Errors);

        Assert.StartsWith("Table \"public\".\"items\": its id column \"id\" is not unique: no primary key or unique index is on it alone.", message, StringComparison.Ordinal);
        Assert.Contains("ALTER TABLE \"public\".\"items\" ADD PRIMARY KEY (\"id\")", message, StringComparison.Ordinal);
    }

    private const string NotesIndexWarning =
        "Table \"public\".\"notes\" has no index that starts with its parent foreign key column \"item_id\". When a record of its parent table \"public\".\"items\" "
        + "changes buckets (a new owner or parent, a soft delete or restore), the pipeline finds that record's children in \"public\".\"notes\" by this key, and "
        + "without an index each such lookup reads the whole table; so does PostgreSQL on every delete of a parent row when the key is a FOREIGN KEY constraint. "
        + "Create the index (CONCURRENTLY builds it without blocking writes; run it on its own, outside a transaction block): "
        + "CREATE INDEX CONCURRENTLY ON \"public\".\"notes\" (\"item_id\");";

    [Fact]
    public async Task A_child_table_without_an_index_on_its_parent_key_is_a_warning_whose_statement_silences_it()
    {
        var database = await GoodDatabaseAsync("DROP INDEX notes_item_id");

        var warning = Assert.Single((await CheckAsync(database, TestSlots.NewName("checks"))).Warnings);

        Assert.Equal(NotesIndexWarning, warning);
        await Sql.ExecuteAsync(database, IndexStatement(warning));
        Assert.Empty((await CheckAsync(database, TestSlots.NewName("checks"))).Warnings);
        Assert.True(await Sql.ScalarAsync<bool>(database, "SELECT indisvalid FROM pg_index WHERE indrelid = 'notes'::regclass AND NOT indisprimary"));
    }

    [Theory]
    [InlineData("CREATE INDEX ON notes (item_id, body)")]
    [InlineData("CREATE UNIQUE INDEX ON notes (item_id, id)")]
    public async Task An_index_led_by_the_parent_key_counts(string index)
    {
        var database = await GoodDatabaseAsync("DROP INDEX notes_item_id", index);

        Assert.Empty((await CheckAsync(database, TestSlots.NewName("checks"))).Warnings);
    }

    [Theory]
    [InlineData("CREATE INDEX ON lines (tenant, account_id)", true)]
    [InlineData("CREATE INDEX ON lines (account_id, tenant)", true)]
    [InlineData("CREATE UNIQUE INDEX ON lines (tenant, account_id, id)", true)]
    [InlineData("ALTER TABLE lines ADD CONSTRAINT lines_key UNIQUE (account_id, tenant, id)", true)]
    [InlineData("CREATE INDEX ON lines (tenant)", false)]
    [InlineData("CREATE INDEX ON lines (tenant, id, account_id)", false)]
    [InlineData("CREATE INDEX ON lines (tenant) INCLUDE (account_id)", false)]
    [InlineData("CREATE INDEX ON lines (tenant, (account_id + 0))", false)]
    [InlineData("CREATE INDEX ON lines USING brin (tenant, account_id)", false)]
    public async Task A_composite_parent_key_counts_as_indexed_when_its_columns_lead_a_btree_index_in_any_order(string index, bool indexed)
    {
        var database = await DatabaseAsync(
            "CREATE TABLE accounts (tenant int, id bigint, owner_id text, PRIMARY KEY (tenant, id))",
            "CREATE TABLE lines (id bigint PRIMARY KEY, tenant int, account_id bigint, FOREIGN KEY (tenant, account_id) REFERENCES accounts)",
            index,
            "CREATE PUBLICATION sync_pub FOR TABLE accounts, lines");
        RegisteredTable[] tables =
        [
            new("public", "accounts", ["tenant", "id"], ["tenant", "id", "owner_id"]),
            new("public", "lines", "id", ["id", "tenant", "account_id"]) { ParentForeignKey = ["tenant", "account_id"], Parent = ("public", "accounts") },
        ];

        var warnings = (await CheckAsync(database, TestSlots.NewName("checks"), tables: tables)).Warnings;

        if (indexed)
        {
            Assert.Empty(warnings);
            return;
        }
        var warning = Assert.Single(warnings);
        Assert.StartsWith("Table \"public\".\"lines\" has no index that starts with its parent foreign key columns (\"tenant\", \"account_id\"). When a record of its "
            + "parent table \"public\".\"accounts\" changes buckets", warning, StringComparison.Ordinal);
        Assert.EndsWith("CREATE INDEX CONCURRENTLY ON \"public\".\"lines\" (\"tenant\", \"account_id\");", warning, StringComparison.Ordinal);
        await Sql.ExecuteAsync(database, IndexStatement(warning));
        Assert.Empty((await CheckAsync(database, TestSlots.NewName("checks"), tables: tables)).Warnings);
    }

    [Fact]
    public async Task The_statement_quotes_names_that_need_it_and_runs_as_printed()
    {
        var database = await DatabaseAsync(
            Tables,
            "CREATE SCHEMA \"Sales Dept\"",
            "CREATE TABLE \"Sales Dept\".\"Line \"\"Items\"\"\" (id bigint PRIMARY KEY, \"Item-Id\" bigint REFERENCES items)",
            "CREATE PUBLICATION sync_pub FOR TABLE items, \"Sales Dept\".\"Line \"\"Items\"\"\"");
        RegisteredTable[] tables = [s_items, new("Sales Dept", "Line \"Items\"", "id", ["id", "Item-Id"]) { ParentForeignKey = ["Item-Id"], Parent = ("public", "items") }];

        var warning = Assert.Single((await CheckAsync(database, TestSlots.NewName("checks"), tables: tables)).Warnings);

        Assert.EndsWith("CREATE INDEX CONCURRENTLY ON \"Sales Dept\".\"Line \"\"Items\"\"\" (\"Item-Id\");", warning, StringComparison.Ordinal);
        await Sql.ExecuteAsync(database, IndexStatement(warning));
        Assert.Empty((await CheckAsync(database, TestSlots.NewName("checks"), tables: tables)).Warnings);
    }

    [Fact]
    public async Task A_partial_index_on_the_parent_key_does_not_count_and_the_warning_says_why()
    {
        var database = await GoodDatabaseAsync("DROP INDEX notes_item_id", "CREATE INDEX notes_live ON notes (item_id) WHERE deleted_at IS NULL");

        var warning = Assert.Single((await CheckAsync(database, TestSlots.NewName("checks"))).Warnings);

        Assert.Equal(
            NotesIndexWarning.Replace("column \"item_id\".", "column \"item_id\"; the index \"notes_live\" on it is partial (WHERE ...), which a lookup by the key alone cannot use.", StringComparison.Ordinal),
            warning);
        await Sql.ExecuteAsync(database, IndexStatement(warning));
        Assert.Empty((await CheckAsync(database, TestSlots.NewName("checks"))).Warnings);
    }

    [Fact]
    public async Task An_invalid_index_left_by_a_failed_concurrent_build_does_not_count_and_the_warning_says_how_to_drop_it()
    {
        var database = await GoodDatabaseAsync(
            "DROP INDEX notes_item_id",
            "INSERT INTO items VALUES (1, 'alice', NULL); INSERT INTO notes VALUES (gen_random_uuid(), 1, 'a', NULL), (gen_random_uuid(), 1, 'b', NULL)");
        // Two notes share item 1, so the unique build fails and leaves the index behind, not valid.
        await Assert.ThrowsAsync<PostgresException>(() => Sql.ExecuteAsync(database, "CREATE UNIQUE INDEX CONCURRENTLY notes_one ON notes (item_id)"));

        var warning = Assert.Single((await CheckAsync(database, TestSlots.NewName("checks"))).Warnings);

        Assert.Contains("starts with its parent foreign key column \"item_id\"; the index \"notes_one\" on it is not valid (a CREATE INDEX CONCURRENTLY failed or "
            + "is still running; drop a failed one with DROP INDEX CONCURRENTLY \"public\".\"notes_one\"). When a record", warning, StringComparison.Ordinal);
        await Sql.ExecuteAsync(database, "DROP INDEX CONCURRENTLY \"public\".\"notes_one\"");
        await Sql.ExecuteAsync(database, IndexStatement(warning));
        Assert.Empty((await CheckAsync(database, TestSlots.NewName("checks"))).Warnings);
    }

    [Fact]
    public async Task A_partitioned_child_table_is_given_a_plain_create_index_which_builds_on_every_partition()
    {
        var database = await DatabaseAsync(
            Tables,
            "CREATE TABLE parts (id bigint PRIMARY KEY, item_id bigint REFERENCES items) PARTITION BY RANGE (id)",
            "CREATE TABLE parts_low PARTITION OF parts FOR VALUES FROM (0) TO (1000)",
            "CREATE TABLE parts_high PARTITION OF parts FOR VALUES FROM (1000) TO (MAXVALUE)",
            "CREATE PUBLICATION sync_pub FOR TABLE items, parts WITH (publish_via_partition_root = true)");
        RegisteredTable[] tables = [s_items, new("public", "parts", "id", ["id", "item_id"]) { ParentForeignKey = ["item_id"], Parent = ("public", "items") }];

        var warnings = (await CheckAsync(database, TestSlots.NewName("checks"), tables: tables)).Warnings;

        Assert.Equal(2, warnings.Count);
        Assert.Contains("publish_via_partition_root = true", warnings[0], StringComparison.Ordinal);
        var warning = warnings[1];
        Assert.EndsWith("Create the index (a partitioned table takes no CONCURRENTLY, so this holds off writes to it while it builds; to avoid that, create it ON ONLY "
            + "the table, then CONCURRENTLY on each partition, and ATTACH each): CREATE INDEX ON \"public\".\"parts\" (\"item_id\");", warning, StringComparison.Ordinal);
        await Sql.ExecuteAsync(database, IndexStatement(warning));
        Assert.Equal(warnings[0], Assert.Single((await CheckAsync(database, TestSlots.NewName("checks"), tables: tables)).Warnings));
    }

    [Fact]
    public async Task A_slot_with_another_plugin_is_an_error()
    {
        var database = await GoodDatabaseAsync();
        var slot = TestSlots.NewName("checks");
        await Sql.ScalarAsync<object>(database, "SELECT pg_create_logical_replication_slot(@slot, 'test_decoding')", ("slot", slot));

        try
        {
            var error = await CheckFailsAsync(database, slot);

            var message = Assert.Single(error.Errors);
            Assert.Contains($"Replication slot \"{slot}\" uses the output plugin 'test_decoding', not 'pgoutput'", message, StringComparison.Ordinal);
            Assert.Contains($"SELECT pg_drop_replication_slot('{slot}')", message, StringComparison.Ordinal);
        }
        finally
        {
            await ReplicationSlots.DropAsync(database, slot, CancellationToken.None);
        }
    }

    [Fact]
    public async Task A_physical_slot_is_an_error()
    {
        var database = await GoodDatabaseAsync();
        var slot = TestSlots.NewName("checks");
        await Sql.ScalarAsync<object>(database, "SELECT pg_create_physical_replication_slot(@slot)", ("slot", slot));

        try
        {
            var error = await CheckFailsAsync(database, slot);

            var message = Assert.Single(error.Errors);
            Assert.Contains($"Replication slot \"{slot}\" is a physical slot", message, StringComparison.Ordinal);
        }
        finally
        {
            await ReplicationSlots.DropAsync(database, slot, CancellationToken.None);
        }
    }

    [Fact]
    public async Task A_slot_of_another_database_is_an_error()
    {
        var database = await GoodDatabaseAsync();
        var elsewhere = await postgres.CreateDatabaseAsync("checks_elsewhere");
        var slot = TestSlots.NewName("checks");
        await ReplicationSlots.CreateIfMissingAsync(elsewhere, slot, twoPhase: false, CancellationToken.None);

        try
        {
            var error = await CheckFailsAsync(database, slot);

            var message = Assert.Single(error.Errors);
            var elsewhereName = new NpgsqlConnectionStringBuilder(elsewhere).Database;
            var databaseName = new NpgsqlConnectionStringBuilder(database).Database;
            Assert.Contains($"Replication slot \"{slot}\" belongs to database '{elsewhereName}', not \"{databaseName}\"", message, StringComparison.Ordinal);
        }
        finally
        {
            await ReplicationSlots.DropAsync(elsewhere, slot, CancellationToken.None);
        }
    }

    [Fact]
    public async Task A_slot_active_on_another_connection_is_an_error_naming_its_process()
    {
        var database = await GoodDatabaseAsync();
        var slot = TestSlots.NewName("checks");
        await ReplicationSlots.CreateIfMissingAsync(database, slot, twoPhase: false, CancellationToken.None);

        var (consumer, walSenderPid) = await SlotConsumerProcess.StartAsync(postgres.Server, database, slot, Publication);
        await using (consumer)
        {
            var error = await CheckFailsAsync(database, slot);

            var message = Assert.Single(error.Errors);
            Assert.Contains($"Replication slot \"{slot}\" is in use by another connection (walsender process {walSenderPid})", message, StringComparison.Ordinal);
            Assert.Contains($"SELECT pg_terminate_backend({walSenderPid})", message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Invalid_slot_and_publication_names_are_errors()
    {
        var database = await GoodDatabaseAsync();

        var error = await CheckFailsAsync(database, "Bad-Slot", publication: "bad\0publication");

        Assert.Equal(2, error.Errors.Count);
        Assert.Contains("Replication slot name 'Bad-Slot' is invalid", error.Errors[0], StringComparison.Ordinal);
        Assert.Contains("Publication name 'bad\\u0000publication' is invalid", error.Errors[1], StringComparison.Ordinal);
    }

    [Fact]
    public async Task Invalid_registered_table_and_column_names_are_errors()
    {
        var database = await GoodDatabaseAsync();
        var badTable = new RegisteredTable("", "items", "id", ["id"]);
        var badColumn = s_notes with { RequiredColumns = ["id", "item\0id", new string('c', 64)] };

        var error = await CheckFailsAsync(database, tables: [s_items, badTable, badColumn]);

        Assert.Equal(3, error.Errors.Count);
        Assert.Contains("Registered table '.items' has an invalid schema or table name", error.Errors[0], StringComparison.Ordinal);
        Assert.Contains("Table \"public\".\"notes\" is registered with an invalid column name 'item\\u0000id'", error.Errors[1], StringComparison.Ordinal);
        Assert.Contains($"invalid column name '{new string('c', 64)}'", error.Errors[2], StringComparison.Ordinal);
    }

    [Fact]
    public async Task No_registered_tables_is_an_error()
    {
        var database = await GoodDatabaseAsync();

        var error = await CheckFailsAsync(database, tables: []);

        var message = Assert.Single(error.Errors);
        Assert.Contains("No tables are registered", message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Several_errors_are_reported_together_in_one_exception()
    {
        var database = await DatabaseAsync(
            "CREATE TABLE items (id bigint PRIMARY KEY, deleted_at timestamptz)",
            "CREATE TABLE notes (id uuid, item_id bigint, deleted_at timestamptz)",
            "ALTER TABLE notes REPLICA IDENTITY NOTHING");
        var ghost = new RegisteredTable("public", "ghosts", "id", ["id"]);

        var error = await CheckFailsAsync(database, "Not Valid", tables: [s_items, s_notes, ghost]);

        Assert.Equal(6, error.Errors.Count);
        Assert.Contains("Replication slot name 'Not Valid' is invalid", error.Errors[0], StringComparison.Ordinal);
        Assert.Contains("Table \"public\".\"items\" has no column \"owner_id\"", error.Errors[1], StringComparison.Ordinal);
        Assert.Contains("Table \"public\".\"notes\": its id column \"id\" is not unique", error.Errors[2], StringComparison.Ordinal);
        Assert.Contains("Table \"public\".\"notes\" has REPLICA IDENTITY NOTHING", error.Errors[3], StringComparison.Ordinal);
        Assert.Contains("Table \"public\".\"ghosts\" does not exist", error.Errors[4], StringComparison.Ordinal);
        Assert.Contains("Publication \"sync_pub\" does not exist", error.Errors[5], StringComparison.Ordinal);
        Assert.EndsWith("CREATE PUBLICATION \"sync_pub\" FOR TABLE \"public\".\"items\", \"public\".\"notes\";", error.Errors[5], StringComparison.Ordinal);
        Assert.StartsWith("The WAL pipeline cannot start; 6 configuration problems:\n1. ", error.Message, StringComparison.Ordinal);
        foreach (var message in error.Errors)
            Assert.Contains(message, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Names_built_to_inject_sql_are_checked_as_data_and_quoted_in_fixes()
    {
        const string Injection = "x\"; DROP TABLE t; --";
        var quotedTable = PgIdentifier.QuoteQualified("public", Injection);
        var quotedColumn = PgIdentifier.Quote(Injection);
        var database = await DatabaseAsync(
            "CREATE TABLE t (id int PRIMARY KEY)",
            $"CREATE TABLE {quotedTable} (id bigint PRIMARY KEY, {quotedColumn} text)",
            "CREATE PUBLICATION sync_pub FOR TABLE t");
        var injected = new RegisteredTable("public", Injection, "id", ["id", Injection, Injection + "'; DROP TABLE t; --"]);

        var error = await CheckFailsAsync(database, tables: [injected], publication: Injection);

        var message = Assert.Single(error.Errors, e => e.Contains("has no column", StringComparison.Ordinal));
        Assert.Contains($"Table {quotedTable} has no column \"x\"\"; DROP TABLE t; --'; DROP TABLE t; --\"", message, StringComparison.Ordinal);
        var publication = Assert.Single(error.Errors, e => e.Contains("CREATE PUBLICATION", StringComparison.Ordinal));
        Assert.Contains($"CREATE PUBLICATION \"x\"\"; DROP TABLE t; --\" FOR TABLE {quotedTable};", publication, StringComparison.Ordinal);
        Assert.Equal(2, error.Errors.Count);
        Assert.Equal(1L, await Sql.ScalarAsync<long>(database, "SELECT count(*) FROM pg_class WHERE relname = 't'"));
    }

    /// <summary>The CREATE INDEX statement a parent-key index warning ends with.</summary>
    private static string IndexStatement(string warning)
    {
        var start = warning.LastIndexOf("CREATE INDEX", StringComparison.Ordinal);
        Assert.True(start >= 0, warning);
        return warning[start..];
    }

    private async Task<string> GoodDatabaseAsync(params string[] more) =>
        await DatabaseAsync([Tables, "CREATE PUBLICATION sync_pub FOR TABLE items, notes", .. more]);

    private async Task<string> DatabaseAsync(params string[] setup)
    {
        var database = await postgres.CreateDatabaseAsync("checks");
        foreach (var sql in setup)
            await Sql.ExecuteAsync(database, sql);
        return database;
    }

    private static async Task<StartupCheckResult> CheckAsync(
        string database, string slot, string publication = Publication, IReadOnlyList<RegisteredTable>? tables = null)
    {
        await using var connection = new NpgsqlConnection(database);
        await connection.OpenAsync();
        return await StartupChecks.RunAsync(connection, slot, publication, tables ?? s_registered, busySendersFail: true, CancellationToken.None);
    }

    private static Task<WalPipelineConfigurationException> CheckFailsAsync(
        string database, string? slot = null, string publication = Publication, IReadOnlyList<RegisteredTable>? tables = null) =>
        Assert.ThrowsAsync<WalPipelineConfigurationException>(() => CheckAsync(database, slot ?? TestSlots.NewName("checks"), publication, tables));
}
