using System.Diagnostics;
using System.Globalization;
using Npgsql;
using Synchro.Pipeline.Changelog;
using Synchro.Pipeline.LocalPostgres;
using Synchro.Pipeline.Registry;
using Synchro.Pipeline.Tests.Infrastructure;

namespace Synchro.Pipeline.Tests.Pipeline;

/// <summary>
/// A pgbench workload on one owned table whose trigger writes an audit trail in the same source
/// transactions, and the exactly-once check: the changelog the pipeline wrote must be, per record and
/// in order, the changelog the reference's edge diff derives from the audit trail.
/// </summary>
/// <remarks>
/// The audit trail is whatever survived on the source: a transaction lost to a crash loses its audit
/// rows with it, so the comparison holds whichever transactions the server kept.
/// </remarks>
internal sealed class AuditedWorkload : IDisposable
{
    public const string Table = "audited_orders";
    public const string Publication = "audited_pub";
    public const string OwnerColumn = "user_id";

    private const string MarkerId = "-1";

    private const string Schema = """
        CREATE TABLE audited_orders (id int PRIMARY KEY, user_id text NOT NULL, total int NOT NULL DEFAULT 0, deleted_at timestamptz);
        ALTER TABLE audited_orders REPLICA IDENTITY FULL;
        CREATE TABLE audit (n bigserial PRIMARY KEY, record_id text NOT NULL, op text NOT NULL, user_id text NOT NULL, deleted boolean NOT NULL);
        CREATE FUNCTION audit_row() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'DELETE' THEN
                INSERT INTO audit (record_id, op, user_id, deleted) VALUES (OLD.id::text, TG_OP, OLD.user_id, OLD.deleted_at IS NOT NULL);
            ELSE
                INSERT INTO audit (record_id, op, user_id, deleted) VALUES (NEW.id::text, TG_OP, NEW.user_id, NEW.deleted_at IS NOT NULL);
            END IF;
            RETURN NULL;
        END $$;
        CREATE TRIGGER audited_orders_audit AFTER INSERT OR UPDATE OR DELETE ON audited_orders FOR EACH ROW EXECUTE FUNCTION audit_row();
        CREATE PUBLICATION audited_pub FOR TABLE audited_orders;
        """;

    // An owner too long for the changelog (MaxBucketIdBytes): 1,287 characters (compressible, so the row is stored inline
    // and its value sent with every change), for about 1 in 20 owners written.
    private const string PoisonOwner = "'poison-' || repeat(md5(:id::text), 40)";

    // Owned rows inserted, updated, moved between owners (now and then to an owner too long for the changelog), soft- and
    // hard-deleted, sometimes several per transaction.
    private const string Script = $"""
        \set id random(1, 300)
        \set other random(1, 300)
        \set uid random(1, 8)
        \set op random(1, 100)
        \set poison random(1, 20)
        \if :op <= 35
        INSERT INTO audited_orders (id, user_id) VALUES (:id, CASE WHEN :poison = 1 THEN {PoisonOwner} ELSE 'u' || :uid END) ON CONFLICT (id) DO NOTHING;
        \elif :op <= 65
        UPDATE audited_orders SET total = total + 1 WHERE id = :id;
        \elif :op <= 77
        UPDATE audited_orders SET user_id = CASE WHEN :poison = 1 THEN {PoisonOwner} ELSE 'u' || :uid END WHERE id = :id;
        \elif :op <= 85
        UPDATE audited_orders SET deleted_at = now() WHERE id = :id AND deleted_at IS NULL;
        \elif :op <= 92
        DELETE FROM audited_orders WHERE id = :id;
        \else
        BEGIN;
        INSERT INTO audited_orders (id, user_id) VALUES (:id, 'u' || :uid) ON CONFLICT (id) DO UPDATE SET total = audited_orders.total + 1;
        UPDATE audited_orders SET user_id = 'u' || :uid, deleted_at = NULL WHERE id = :other;
        COMMIT;
        \endif
        """;

    // Per client, a range of ids of its own (no lock waits with the others): 500 rows in one transaction, far past a
    // logical_decoding_work_mem of 64 kB, so the server streams them. Some commit, some roll back, some roll back a savepoint.
    private const string LargeScript = """
        \set base 100000 + :client_id * 10000
        \set uid random(1, 8)
        \set fate random(1, 4)
        BEGIN;
        INSERT INTO audited_orders (id, user_id) SELECT g, CASE WHEN g % 97 = 0 THEN 'poison-' || repeat(md5(g::text), 40) ELSE 'u' || :uid END FROM generate_series(:base, :base + 499) g ON CONFLICT (id) DO UPDATE SET total = audited_orders.total + 1, user_id = EXCLUDED.user_id, deleted_at = NULL;
        SAVEPOINT s1;
        UPDATE audited_orders SET deleted_at = now() WHERE id BETWEEN :base AND :base + 99;
        \if :fate = 1
        ROLLBACK TO SAVEPOINT s1;
        \endif
        DELETE FROM audited_orders WHERE id BETWEEN :base + 300 AND :base + 349;
        \if :fate = 2
        ROLLBACK;
        \else
        COMMIT;
        \endif
        """;

    // Two-phase transactions, small or streamed, left prepared for a moment (so kills land between PREPARE and
    // COMMIT PREPARED), then committed or rolled back.
    private const string PreparedScript = """
        \set base 200000 + :client_id * 1000
        \set n random(1, 1000000000)
        \set uid random(1, 8)
        \set fate random(1, 3)
        \set rows 20 + random(0, 1) * 380
        BEGIN;
        INSERT INTO audited_orders (id, user_id) SELECT g, 'u' || :uid FROM generate_series(:base, :base + :rows) g ON CONFLICT (id) DO UPDATE SET total = audited_orders.total + 1, user_id = EXCLUDED.user_id;
        PREPARE TRANSACTION 'p:client_id-:n';
        \sleep 50 ms
        \if :fate = 1
        ROLLBACK PREPARED 'p:client_id-:n';
        \else
        COMMIT PREPARED 'p:client_id-:n';
        \endif
        """;

    private readonly LocalPostgresServer _server;
    private readonly string _scriptFile;
    private readonly string? _refusedBucket;

    private AuditedWorkload(LocalPostgresServer server, string connectionString, string scriptFile, string? refusedBucket)
    {
        _server = server;
        _refusedBucket = refusedBucket;
        // Unpooled: a pooled connection would outlive a server restart and fail its next command.
        ConnectionString = new NpgsqlConnectionStringBuilder(connectionString) { Pooling = false }.ConnectionString;
        _scriptFile = scriptFile;
    }

    public string ConnectionString { get; }

    /// <summary>Where the comparison reads the changelog and the rule failures: the source database unless set to the pipeline's changelog database.</summary>
    public string? ChangelogConnectionString { get; set; }

    private string Changelog => ChangelogConnectionString is { } changelog
        ? new NpgsqlConnectionStringBuilder(changelog) { Pooling = false }.ConnectionString
        : ConnectionString;

    /// <summary>Creates the audited table, its trigger and the publication in the (empty) database of <paramref name="connectionString"/>.</summary>
    /// <param name="server">The server, for pgbench.</param>
    /// <param name="connectionString">The database.</param>
    /// <param name="refusedBucket">
    /// A bucket the changelog refuses rows of (a CHECK constraint added to <c>sync_changelog</c>), so that the writer isolates
    /// every change with a row in it into <c>sync_rule_failures</c>; null for none.
    /// </param>
    public static async Task<AuditedWorkload> CreateAsync(LocalPostgresServer server, string connectionString, string? refusedBucket = null)
    {
        var workload = new AuditedWorkload(server, connectionString, Path.Combine(Path.GetTempPath(), $"synchro-workload-{Guid.NewGuid():N}.sql"), refusedBucket);
        await Sql.ExecuteAsync(workload.ConnectionString, Schema);
        if (refusedBucket is not null)
        {
            await using var connection = new NpgsqlConnection(workload.ConnectionString);
            await connection.OpenAsync();
            await ChangelogSchema.EnsureAsync(connection);
            await using var refuse = new NpgsqlCommand($"ALTER TABLE sync_changelog ADD CONSTRAINT refused_bucket CHECK (bucket_id <> '{refusedBucket}')", connection);
            await refuse.ExecuteNonQueryAsync();
        }
        await File.WriteAllTextAsync(workload._scriptFile, Script);
        return workload;
    }

    /// <summary>
    /// The workload of a database that has it already (a promoted standby of the one <see cref="CreateAsync"/> set up):
    /// pgbench and the comparison run against <paramref name="connectionString"/>.
    /// </summary>
    public static async Task<AuditedWorkload> AttachAsync(LocalPostgresServer server, string connectionString)
    {
        var workload = new AuditedWorkload(server, connectionString, Path.Combine(Path.GetTempPath(), $"synchro-workload-{Guid.NewGuid():N}.sql"), refusedBucket: null);
        await File.WriteAllTextAsync(workload._scriptFile, Script);
        return workload;
    }

    /// <summary>Starts pgbench with the workload script for <paramref name="seconds"/>, for a run the caller ends or lets fail (a killed server).</summary>
    public Process StartPgbench(int seconds, int rate, int clients = 4)
        => Pgbench.Start(_server, ConnectionString, _scriptFile, "-c", Invariant(clients), "-j", "2", "-T", Invariant(seconds), "-R", Invariant(rate));

    /// <summary>The registry the comparison assumes: the audited table, bucketed by its owner column.</summary>
    public static TableRegistry Registry() => new TableRegistry().Add(new TableRegistration(Table) { OwnerColumn = OwnerColumn });

    /// <summary>
    /// Runs pgbench with the workload script for <paramref name="seconds"/> (at most <paramref name="rate"/>
    /// transactions per second when given) and fails unless it exits cleanly; returns the transactions it processed.
    /// </summary>
    public async Task<long> RunPgbenchAsync(int seconds, int? rate = null, int clients = 4, bool largeAndPrepared = false)
    {
        string[] arguments = ["-c", Invariant(clients), "-j", "2", "-T", Invariant(seconds)];
        if (rate is { } limit)
            arguments = [.. arguments, "-R", Invariant(limit)];
        var script = _scriptFile;
        if (largeAndPrepared)
        {
            // Weights: mostly the small transactions, a few streamed ones, some two-phase ones.
            await File.WriteAllTextAsync(_scriptFile + ".large", LargeScript);
            await File.WriteAllTextAsync(_scriptFile + ".prepared", PreparedScript);
            script = _scriptFile + "@88";
            arguments = [.. arguments, "-f", _scriptFile + ".large@3", "-f", _scriptFile + ".prepared@9"];
        }
        return await Pgbench.RunAsync(_server, ConnectionString, script, TimeSpan.FromSeconds(seconds) + TimeSpan.FromMinutes(2), arguments);
    }

    /// <summary>A last transaction after the workload: once it is in the changelog, everything before it is.</summary>
    public Task InsertMarkerAsync() => Sql.ExecuteAsync(ConnectionString, $"INSERT INTO audited_orders (id, user_id) VALUES ({MarkerId}, 'marker')");

    /// <summary>Waits for the marker in the changelog; <paramref name="checkConsumer"/> throws when the pipeline died meanwhile.</summary>
    public Task WaitForMarkerAsync(Func<Task> checkConsumer, TimeSpan timeout) => AuditComparison.WaitForMarkerAsync(Changelog, MarkerId, checkConsumer, timeout);

    /// <summary>
    /// Asserts that the changelog is exactly the one the audit trail implies, record by record and in order, and so are
    /// the rule failures of owners too long for the changelog (at least one); that the changelog holds more than
    /// <paramref name="minimumRows"/> rows; returns its size.
    /// </summary>
    public async Task<int> AssertChangelogMatchesAuditAsync(int minimumRows)
    {
        var (expected, expectedFailures) = await ExpectedChangelogAsync();
        var actual = await AuditComparison.ActualChangelogAsync(Changelog);
        var rows = expected.Values.Sum(v => v.Count);
        Assert.True(rows > minimumRows, $"the workload produced only {rows} changelog rows");
        AuditComparison.AssertSame("the changelog", expected, actual);

        var actualFailures = await AuditComparison.ActualRuleFailuresAsync(Changelog);
        Assert.True(expectedFailures.Count > 0, "the workload wrote no owner too long for the changelog");
        AuditComparison.AssertSame("sync_rule_failures", expectedFailures, actualFailures);
        return rows;
    }

    public Task<T> ScalarAsync<T>(string sql) => Sql.ScalarAsync<T>(ConnectionString, sql);

    public void Dispose()
    {
        File.Delete(_scriptFile);
        File.Delete(_scriptFile + ".large");
        File.Delete(_scriptFile + ".prepared");
    }

    /// <summary>The reference's edge diff (<see cref="AuditComparison.Expected"/>) replayed over the audit trail in audit order.</summary>
    private async Task<(Dictionary<string, List<string>> Changelog, Dictionary<string, List<string>> Failures)> ExpectedChangelogAsync()
    {
        var changes = new List<AuditedChange>();
        await using var connection = new NpgsqlConnection(ConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT record_id, op, user_id, deleted FROM audit ORDER BY n", connection);
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
            changes.Add(new AuditedChange(reader.GetString(0), reader.GetString(1), reader.GetString(2), reader.GetBoolean(3)));
        return AuditComparison.Expected(changes, _refusedBucket);
    }

    private static string Invariant(int value) => value.ToString(CultureInfo.InvariantCulture);
}
