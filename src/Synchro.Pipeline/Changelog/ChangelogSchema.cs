using Npgsql;
using NpgsqlTypes;
using Synchro.Pipeline.Postgres;

namespace Synchro.Pipeline.Changelog;

/// <summary>
/// The idempotent migration of the sidecar tables the pipeline writes: the changelog clients pull,
/// the bucket membership index, the replication position and the rule failure log.
/// </summary>
/// <remarks>
/// Table, column and index names are those of the synchro reference implementation, so a database
/// it already migrated is accepted: nothing existing is dropped, and the only change to an existing table is
/// the nullable source columns added to <c>sync_wal_position</c>, which the reference does not read.
/// </remarks>
public static class ChangelogSchema
{
    /// <summary>The sidecar tables <see cref="EnsureAsync"/> creates: the Go reference's four, then <c>sync_prepared_transactions</c> (two-phase transactions awaiting their outcome) <c>sync_transaction_skips</c> (a transaction an operator asked to skip), <c>sync_bucket_horizons</c> (where compaction removed deletes, per bucket) and <c>sync_compaction_state</c> (what the last complete compaction covered).</summary>
    public static IReadOnlyList<string> TableNames { get; } = ["sync_changelog", "sync_bucket_edges", "sync_wal_position", "sync_rule_failures", "sync_prepared_transactions", "sync_transaction_skips", "sync_bucket_horizons", "sync_compaction_state"];

    // Invariant: every statement is idempotent, so a database this already migrated is left unchanged, and one the
    // synchro reference migrated only gains the source columns of sync_wal_position. One batch command per statement, because a
    // multi-statement command needs Npgsql's SQL rewriting, which an application may turn off.
    // Keys are compared for equality only (clients pull by bucket_id = $1 AND seq > $2), never sorted as text,
    // so they are declared COLLATE "C": byte comparison keeps every index the writer maintains cheap on a database
    // whose default collation is a language's (in a measurement on an ICU en-US database, 1M changelog rows
    // inserted about 15 % faster and 1M edges about 25 % faster). Tables that already exist are left as they are.
    private static readonly string[] s_statements =
    [
        // Key 0x0053594E4348524F, 'SYNCHRO' in ASCII: one no other application is likely to pick.
        "SELECT pg_catalog.pg_advisory_xact_lock(23460615738118735)",
        """
        CREATE TABLE IF NOT EXISTS sync_changelog (
            seq BIGSERIAL PRIMARY KEY,
            bucket_id TEXT COLLATE pg_catalog."C" NOT NULL,
            table_name TEXT COLLATE pg_catalog."C" NOT NULL,
            record_id TEXT COLLATE pg_catalog."C" NOT NULL,
            operation SMALLINT NOT NULL,
            created_at TIMESTAMPTZ NOT NULL DEFAULT pg_catalog.now()
        )
        """,
        "CREATE INDEX IF NOT EXISTS idx_sync_changelog_bucket_seq ON sync_changelog (bucket_id, seq)",
        // The reference's (table_name, record_id) index serves no read, compaction or write path and costs every insert.
        "DROP INDEX IF EXISTS idx_sync_changelog_record",
        """
        CREATE TABLE IF NOT EXISTS sync_bucket_edges (
            table_name TEXT COLLATE pg_catalog."C" NOT NULL,
            record_id TEXT COLLATE pg_catalog."C" NOT NULL,
            bucket_id TEXT COLLATE pg_catalog."C" NOT NULL,
            updated_at TIMESTAMPTZ NOT NULL DEFAULT pg_catalog.now(),
            PRIMARY KEY (table_name, record_id, bucket_id)
        )
        """,
        "CREATE INDEX IF NOT EXISTS idx_sync_bucket_edges_bucket ON sync_bucket_edges (bucket_id, table_name, record_id)",
        """
        CREATE TABLE IF NOT EXISTS sync_wal_position (
            slot_name TEXT PRIMARY KEY,
            confirmed_lsn BIGINT NOT NULL DEFAULT 0,
            updated_at TIMESTAMPTZ NOT NULL DEFAULT pg_catalog.now()
        )
        """,
        // Ours, not the reference's (invariant 8): the source each position was read from. Added to a table the reference or an
        // older version created, with NULLs in existing rows ("not yet bound", bound at the next save); the reference ignores
        // them. Checked first, so that a start finding them takes no lock on the table the writers of other slots update.
        """
        DO $$
        BEGIN
            IF (SELECT pg_catalog.count(*) FROM pg_catalog.pg_attribute
                WHERE attrelid = pg_catalog.to_regclass('sync_wal_position') AND NOT attisdropped
                  AND attname IN ('source_system_id', 'source_timeline', 'source_database_oid', 'source_database')) < 4 THEN
                ALTER TABLE sync_wal_position
                    ADD COLUMN IF NOT EXISTS source_system_id BIGINT,
                    ADD COLUMN IF NOT EXISTS source_timeline BIGINT,
                    ADD COLUMN IF NOT EXISTS source_database_oid BIGINT,
                    ADD COLUMN IF NOT EXISTS source_database TEXT;
            END IF;
        END
        $$
        """,
        """
        CREATE TABLE IF NOT EXISTS sync_rule_failures (
            id BIGSERIAL PRIMARY KEY,
            table_name TEXT NOT NULL,
            record_id TEXT NOT NULL,
            operation SMALLINT NOT NULL,
            error_text TEXT NOT NULL,
            payload JSONB,
            created_at TIMESTAMPTZ NOT NULL DEFAULT pg_catalog.now()
        )
        """,
        "CREATE INDEX IF NOT EXISTS idx_sync_rule_failures_created ON sync_rule_failures (created_at)",
        // Ours, not the reference's: prepared (two-phase) transactions awaiting COMMIT/ROLLBACK PREPARED, in spill format chunks.
        """
        CREATE TABLE IF NOT EXISTS sync_prepared_transactions (
            slot_name TEXT NOT NULL,
            gid TEXT NOT NULL,
            chunk INT NOT NULL,
            data BYTEA NOT NULL,
            created_at TIMESTAMPTZ NOT NULL DEFAULT pg_catalog.now(),
            PRIMARY KEY (slot_name, gid, chunk)
        )
        """,
        // Ours: per bucket, the highest seq of a delete row compaction removed; a reader whose cursor is below it must resync
        // the bucket (docs/changelog.md). Written in the same transaction as the removal.
        """
        CREATE TABLE IF NOT EXISTS sync_bucket_horizons (
            bucket_id TEXT COLLATE pg_catalog."C" PRIMARY KEY,
            horizon_seq BIGINT NOT NULL,
            updated_at TIMESTAMPTZ NOT NULL DEFAULT pg_catalog.now()
        )
        """,
        // Ours: one row, what the last complete compaction run covered: every bucket was compacted through compacted_through_seq
        // and had its old deletes purged through purged_through_seq; the next run visits only buckets with rows after them.
        """
        CREATE TABLE IF NOT EXISTS sync_compaction_state (
            id SMALLINT PRIMARY KEY DEFAULT 1 CHECK (id = 1),
            compacted_through_seq BIGINT NOT NULL,
            purged_through_seq BIGINT NOT NULL,
            updated_at TIMESTAMPTZ NOT NULL DEFAULT pg_catalog.now()
        )
        """,
        // Ours: the one transaction per slot an operator asked the pipeline to skip (synchro-pipeline skip --lsn).
        """
        CREATE TABLE IF NOT EXISTS sync_transaction_skips (
            slot_name TEXT PRIMARY KEY,
            commit_lsn BIGINT NOT NULL,
            requested_at TIMESTAMPTZ NOT NULL DEFAULT pg_catalog.now()
        )
        """,
    ];

    // What the statements create, by name in the schema: a migration is pending while any of it is missing. Kept next to
    // the statements: a statement that adds an object adds its name here.
    private static readonly string[] s_relations =
    [
        .. TableNames, "idx_sync_changelog_bucket_seq", "idx_sync_bucket_edges_bucket", "idx_sync_rule_failures_created",
    ];

    private static readonly string[] s_positionSourceColumns = ["source_system_id", "source_timeline", "source_database_oid", "source_database"];

    // Read-only; the catalogs are readable by every role. The other schemas holding a sync_wal_position tell a changelog
    // moved by the configuration (a Search Path changed, or one a role's setting used to give) from a new one.
    private const string StateSql = """
        SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1),
               ARRAY(SELECT r.name FROM pg_catalog.unnest($2::text[]) WITH ORDINALITY AS r(name, ord)
                     WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                                       WHERE n.nspname = $1 AND c.relname = r.name)
                     ORDER BY r.ord),
               ARRAY(SELECT a.name FROM pg_catalog.unnest($3::text[]) WITH ORDINALITY AS a(name, ord)
                     WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute t
                                       JOIN pg_catalog.pg_class c ON c.oid = t.attrelid
                                       JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                                       WHERE n.nspname = $1 AND c.relname = 'sync_wal_position' AND t.attname = a.name AND NOT t.attisdropped)
                     ORDER BY a.ord),
               ARRAY(SELECT n.nspname::text FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                     WHERE c.relname = 'sync_wal_position' AND c.relkind IN ('r', 'p') AND n.nspname <> $1
                     ORDER BY 1)
        """;

    /// <summary>
    /// The schema the pipeline keeps the sidecar tables of <paramref name="connectionString"/> in: the first schema its
    /// <c>Search Path</c> names, or <c>public</c> when it names none. A role's or a database's <c>search_path</c> setting
    /// does not count: the pipeline's sessions run with a pinned one.
    /// </summary>
    /// <exception cref="ArgumentException">The connection string is invalid, or its <c>Search Path</c> does not start with a schema name.</exception>
    public static string SchemaOf(string connectionString)
    {
        ArgumentException.ThrowIfNullOrEmpty(connectionString);
        return SessionSearchPath.ChangelogSchema(connectionString);
    }

    /// <summary>
    /// <paramref name="connectionString"/> with the <c>search_path</c> the pipeline's changelog sessions run with:
    /// <c>"&lt;schema&gt;", pg_temp</c> (<see cref="SchemaOf"/>; <c>pg_catalog</c> is searched first), for tools that read
    /// the sidecar tables by their plain names and must find the pipeline's, whatever else the role's path would find.
    /// </summary>
    /// <exception cref="ArgumentException">The connection string is invalid, or its <c>Search Path</c> does not start with a schema name.</exception>
    public static string PinSearchPath(string connectionString)
    {
        ArgumentException.ThrowIfNullOrEmpty(connectionString);
        return SessionSearchPath.Changelog(connectionString);
    }

    /// <summary>
    /// Creates the sidecar tables and their indexes where they do not exist yet, in one transaction, in the schema the
    /// pipeline uses for the connection's connection string (<see cref="SchemaOf"/>).
    /// </summary>
    /// <remarks>
    /// <para>
    /// Creates, in that schema (<c>public</c> unless the connection string's <c>Search Path</c> names another first):
    /// <list type="bullet">
    /// <item><c>sync_changelog</c> (<c>seq BIGSERIAL</c> primary key, <c>bucket_id</c>, <c>table_name</c>,
    /// <c>record_id</c> text, <c>operation SMALLINT</c>, <c>created_at</c>) with indexes on
    /// <c>(bucket_id, seq)</c>: the ordered log clients pull (the reference's <c>(table_name, record_id)</c> index is
    /// dropped: nothing reads by it, and it cost every write);</item>
    /// <item><c>sync_bucket_edges</c> (<c>table_name</c>, <c>record_id</c>, <c>bucket_id</c>, <c>updated_at</c>),
    /// primary key <c>(table_name, record_id, bucket_id)</c>, index on <c>(bucket_id, table_name, record_id)</c>:
    /// which record is in which bucket now;</item>
    /// <item><c>sync_wal_position</c> (<c>slot_name</c> primary key, <c>confirmed_lsn BIGINT</c>, <c>updated_at</c>, and
    /// <c>source_system_id</c>, <c>source_timeline</c>, <c>source_database_oid</c> <c>BIGINT</c> and <c>source_database</c>
    /// text, added to an existing table): each slot's durable position and the source it was read from;</item>
    /// <item><c>sync_rule_failures</c> (<c>id BIGSERIAL</c> primary key, <c>table_name</c>, <c>record_id</c>,
    /// <c>operation SMALLINT</c>, <c>error_text</c>, <c>payload JSONB</c>, <c>created_at</c>) with an index on
    /// <c>created_at</c>: changes whose bucket rule failed, kept for replay;</item>
    /// <item><c>sync_prepared_transactions</c> (<c>slot_name</c>, <c>gid</c>, <c>chunk INT</c>, <c>data BYTEA</c>,
    /// <c>created_at</c>), primary key <c>(slot_name, gid, chunk)</c>: the decoded changes of prepared (two-phase)
    /// transactions until their COMMIT or ROLLBACK PREPARED;</item>
    /// <item><c>sync_transaction_skips</c> (<c>slot_name</c> primary key, <c>commit_lsn BIGINT</c>, <c>requested_at</c>):
    /// the transaction an operator asked to skip, until the pipeline has skipped it;</item>
    /// <item><c>sync_bucket_horizons</c> (<c>bucket_id</c> primary key, <c>horizon_seq BIGINT</c>, <c>updated_at</c>): per
    /// bucket, the highest <c>seq</c> of a delete row compaction removed; a reader behind it resyncs the bucket;</item>
    /// <item><c>sync_compaction_state</c> (one row: <c>compacted_through_seq</c>, <c>purged_through_seq</c> <c>BIGINT</c>,
    /// <c>updated_at</c>): what the last complete compaction covered, so the next one visits only buckets with newer rows.</item>
    /// </list>
    /// </para>
    /// <para>
    /// Safe to run at every start and from several processes at once: concurrent callers are serialised by a
    /// transaction-scoped advisory lock, and existing tables and indexes are left as they are, except that the source
    /// columns are added to a <c>sync_wal_position</c> that lacks them (nullable, so its rows are kept as they are).
    /// The statements run with the transaction's <c>search_path</c> set to the schema (and <c>pg_temp</c>), whatever the
    /// session's. The tables belong to the connecting role, which must then grant the changelog role its DML
    /// (docs/setup.md, "Roles and grants").
    /// </para>
    /// </remarks>
    /// <param name="connection">An open connection with no transaction in progress; the user needs the
    /// <c>CREATE</c> privilege on the schema, and to own the tables when one must be altered.</param>
    /// <param name="cancellationToken">Cancels the migration; nothing of it is kept.</param>
    /// <exception cref="ArgumentException">The connection's <c>Search Path</c> does not start with a schema name.</exception>
    /// <exception cref="InvalidOperationException">The connection is not open, or a transaction is already in progress on it.</exception>
    /// <exception cref="PostgresException">The server refused a statement (for example, missing privileges, or no such schema).</exception>
    public static Task EnsureAsync(NpgsqlConnection connection, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(connection);
        return MigrateAsync(connection, SessionSearchPath.ChangelogSchema(connection.ConnectionString), cancellationToken);
    }

    /// <summary>Creates what is missing of the sidecar tables in <paramref name="schema"/> (see <see cref="EnsureAsync"/>).</summary>
    internal static async Task MigrateAsync(NpgsqlConnection connection, string schema, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(connection);
        var transaction = await connection.BeginTransactionAsync(cancellationToken).ConfigureAwait(false);
        await using (transaction.ConfigureAwait(false))
        {
            var batch = new NpgsqlBatch(connection, transaction);
            await using (batch.ConfigureAwait(false))
            {
                // Unqualified names in the statements then mean the schema (pg_catalog is searched first); a parameter, not SQL text.
                batch.BatchCommands.Add(new NpgsqlBatchCommand("SELECT pg_catalog.set_config('search_path', $1, true)")
                {
                    Parameters = { new NpgsqlParameter<string>() { TypedValue = PgIdentifier.Quote(schema) + ", pg_temp" } },
                });
                foreach (var statement in s_statements)
                    batch.BatchCommands.Add(new NpgsqlBatchCommand(statement));
                await batch.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }
            await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>What exists of the sidecar tables in <paramref name="schema"/>, read from the catalog without changing anything.</summary>
    internal static async Task<SidecarState> ReadStateAsync(NpgsqlConnection connection, string schema, CancellationToken cancellationToken)
    {
        var command = new NpgsqlCommand(StateSql, connection)
        {
            Parameters =
            {
                new NpgsqlParameter<string>() { TypedValue = schema },
                new NpgsqlParameter<string[]>() { TypedValue = s_relations, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text },
                new NpgsqlParameter<string[]>() { TypedValue = s_positionSourceColumns, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text },
            },
        };
        await using (command.ConfigureAwait(false))
        {
            var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
                var relations = reader.GetFieldValue<string[]>(1);
                // Columns of a table that is missing altogether are part of creating it.
                var columns = relations.Contains("sync_wal_position") ? [] : reader.GetFieldValue<string[]>(2).Select(c => "sync_wal_position." + c);
                return new SidecarState(schema, reader.GetBoolean(0), [.. relations, .. columns], reader.GetFieldValue<string[]>(3));
            }
        }
    }
}

/// <summary>What exists of the sidecar tables in a schema.</summary>
/// <param name="Schema">The changelog schema.</param>
/// <param name="SchemaExists">Whether the schema exists.</param>
/// <param name="Missing">The tables, indexes and columns (<c>table.column</c>) a migration would create; empty when none is pending.</param>
/// <param name="OtherSchemas">Other schemas of the database that hold a <c>sync_wal_position</c>: changelogs of their own.</param>
internal sealed record SidecarState(string Schema, bool SchemaExists, IReadOnlyList<string> Missing, IReadOnlyList<string> OtherSchemas)
{
    /// <summary>Whether a migration is pending (anything missing).</summary>
    public bool MigrationPending => Missing.Count > 0;

    /// <summary>Whether nothing of the sidecar tables exists in the schema yet.</summary>
    public bool Empty => Missing.Contains("sync_wal_position") && Missing.Contains("sync_changelog");
}
