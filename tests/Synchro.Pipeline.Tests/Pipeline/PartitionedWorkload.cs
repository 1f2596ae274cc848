using System.Globalization;
using Npgsql;
using Synchro.Pipeline.LocalPostgres;
using Synchro.Pipeline.Tests.Infrastructure;

namespace Synchro.Pipeline.Tests.Pipeline;

/// <summary>
/// The audited workload on a partitioned table: pgbench writes owned rows across three list partitions (one of them
/// hash-partitioned again), moving rows between partitions too, and a trigger on the partitioned table writes an audit
/// trail. The changelog must be the one <see cref="AuditComparison"/> derives from it: the record id is (id, part), as
/// the primary key must hold the partition key, so a row moving between partitions is a key change (a delete of the
/// old record, an insert of the new one), which is also what the trigger sees.
/// </summary>
/// <remarks>
/// The primary key (id, part) does not keep id unique alone; each pgbench client writes only ids of its own
/// (<c>client_id * 1000 + 1..300</c>) and inserts one only where none exists.
/// </remarks>
internal sealed class PartitionedWorkload : IDisposable
{
    public const string Table = "audited_events";
    public const string Publication = "audited_events_pub";
    public const string OwnerColumn = "user_id";
    public static readonly string[] IdColumns = ["id", "part"];

    private const string MarkerId = "[\"-1\",\"1\"]";

    // REPLICA IDENTITY FULL on every leaf, which decides what WAL holds of an old row, and on the
    // root, which decides how pgoutput sends that row under publish_via_partition_root: as the full old row, or as a key
    // (here none) that the pipeline cannot attribute a delete with.
    private const string Schema = """
        CREATE TABLE audited_events (id int NOT NULL, part int NOT NULL, user_id text NOT NULL, total int NOT NULL DEFAULT 0, deleted_at timestamptz,
            PRIMARY KEY (id, part)) PARTITION BY LIST (part);
        CREATE INDEX ON audited_events (id);
        CREATE TABLE audited_events_1 PARTITION OF audited_events FOR VALUES IN (1);
        CREATE TABLE audited_events_2 PARTITION OF audited_events FOR VALUES IN (2);
        CREATE TABLE audited_events_3 PARTITION OF audited_events FOR VALUES IN (3) PARTITION BY HASH (id);
        CREATE TABLE audited_events_3_0 PARTITION OF audited_events_3 FOR VALUES WITH (MODULUS 2, REMAINDER 0);
        CREATE TABLE audited_events_3_1 PARTITION OF audited_events_3 FOR VALUES WITH (MODULUS 2, REMAINDER 1);
        ALTER TABLE audited_events REPLICA IDENTITY FULL;
        ALTER TABLE audited_events_1 REPLICA IDENTITY FULL;
        ALTER TABLE audited_events_2 REPLICA IDENTITY FULL;
        ALTER TABLE audited_events_3_0 REPLICA IDENTITY FULL;
        ALTER TABLE audited_events_3_1 REPLICA IDENTITY FULL;
        CREATE TABLE audit (n bigserial PRIMARY KEY, record_id text NOT NULL, op text NOT NULL, user_id text NOT NULL, deleted boolean NOT NULL);
        CREATE FUNCTION audit_row() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'DELETE' THEN
                INSERT INTO audit (record_id, op, user_id, deleted) VALUES ('["' || OLD.id || '","' || OLD.part || '"]', TG_OP, OLD.user_id, OLD.deleted_at IS NOT NULL);
            ELSE
                INSERT INTO audit (record_id, op, user_id, deleted) VALUES ('["' || NEW.id || '","' || NEW.part || '"]', TG_OP, NEW.user_id, NEW.deleted_at IS NOT NULL);
            END IF;
            RETURN NULL;
        END $$;
        CREATE TRIGGER audited_events_audit AFTER INSERT OR UPDATE OR DELETE ON audited_events FOR EACH ROW EXECUTE FUNCTION audit_row();
        """;

    // Inserts, updates, owner moves, soft and hard deletes, and updates of part: to another partition or the same one,
    // some with a new owner; the multi-statement transactions insert then move a row, and move another one back from a
    // soft delete. The trigger sees a move as DELETE on the source partition and INSERT on the destination.
    private const string Script = """
        \set id :client_id * 1000 + random(1, 300)
        \set other :client_id * 1000 + random(1, 300)
        \set part random(1, 3)
        \set uid random(1, 8)
        \set op random(1, 100)
        \if :op <= 28
        INSERT INTO audited_events (id, part, user_id) SELECT :id, :part, 'u' || :uid WHERE NOT EXISTS (SELECT FROM audited_events WHERE id = :id);
        \elif :op <= 44
        UPDATE audited_events SET total = total + 1 WHERE id = :id;
        \elif :op <= 52
        UPDATE audited_events SET user_id = 'u' || :uid WHERE id = :id;
        \elif :op <= 64
        UPDATE audited_events SET part = :part, total = total + 1 WHERE id = :id;
        \elif :op <= 72
        UPDATE audited_events SET part = :part, user_id = 'u' || :uid WHERE id = :id;
        \elif :op <= 79
        UPDATE audited_events SET deleted_at = now() WHERE id = :id AND deleted_at IS NULL;
        \elif :op <= 86
        DELETE FROM audited_events WHERE id = :id;
        \else
        BEGIN;
        INSERT INTO audited_events (id, part, user_id) SELECT :id, :part, 'u' || :uid WHERE NOT EXISTS (SELECT FROM audited_events WHERE id = :id);
        UPDATE audited_events SET part = 1 + part % 3, total = total + 1 WHERE id = :id;
        UPDATE audited_events SET part = 1 + part % 3, user_id = 'u' || :uid, deleted_at = NULL WHERE id = :other;
        COMMIT;
        \endif
        """;

    private readonly LocalPostgresServer _server;
    private readonly string _scriptFile = Path.Combine(Path.GetTempPath(), $"synchro-partitioned-workload-{Guid.NewGuid():N}.sql");

    private PartitionedWorkload(LocalPostgresServer server, string connectionString)
    {
        _server = server;
        ConnectionString = new NpgsqlConnectionStringBuilder(connectionString) { Pooling = false }.ConnectionString;
    }

    public string ConnectionString { get; }

    /// <summary>
    /// Creates the partitioned table, its partitions, the audit trigger and the publication, with
    /// <c>publish_via_partition_root</c> as given, in the (empty) database of <paramref name="connectionString"/>.
    /// </summary>
    public static async Task<PartitionedWorkload> CreateAsync(LocalPostgresServer server, string connectionString, bool publishViaPartitionRoot)
    {
        var workload = new PartitionedWorkload(server, connectionString);
        await Sql.ExecuteAsync(workload.ConnectionString, Schema
            + $"CREATE PUBLICATION {Publication} FOR TABLE {Table} WITH (publish_via_partition_root = {(publishViaPartitionRoot ? "true" : "false")});");
        await File.WriteAllTextAsync(workload._scriptFile, Script);
        return workload;
    }

    /// <summary>
    /// Runs pgbench with the workload script for <paramref name="seconds"/> at most <paramref name="rate"/> transactions per
    /// second and fails unless it exits cleanly; returns the transactions it processed.
    /// </summary>
    public Task<long> RunPgbenchAsync(int seconds, int rate, int clients = 4)
        => Pgbench.RunAsync(_server, ConnectionString, _scriptFile, TimeSpan.FromSeconds(seconds) + TimeSpan.FromMinutes(2),
            "-c", Invariant(clients), "-j", "2", "-T", Invariant(seconds), "-R", Invariant(rate));

    /// <summary>A last transaction after the workload: once it is in the changelog, everything before it is.</summary>
    public Task InsertMarkerAsync() => Sql.ExecuteAsync(ConnectionString, "INSERT INTO audited_events (id, part, user_id) VALUES (-1, 1, 'marker')");

    /// <summary>Waits for the marker in the changelog; <paramref name="checkConsumer"/> throws when the pipeline died meanwhile.</summary>
    public Task WaitForMarkerAsync(Func<Task> checkConsumer, TimeSpan timeout) => AuditComparison.WaitForMarkerAsync(ConnectionString, MarkerId, checkConsumer, timeout);

    /// <summary>
    /// Asserts that the changelog is exactly the one the audit trail implies, record by record and in order, that no change
    /// became a rule failure, and that the audit trail holds more than <paramref name="minimumMoves"/> cross-partition
    /// updates and the changelog more than <paramref name="minimumRows"/> rows; returns the changelog's size and the moves.
    /// </summary>
    public async Task<(int Rows, int Moves)> AssertChangelogMatchesAuditAsync(int minimumRows, int minimumMoves)
    {
        var (changes, moves) = await AuditedChangesAsync();
        var (expected, expectedFailures) = AuditComparison.Expected(changes, refusedBucket: null);
        var rows = expected.Values.Sum(v => v.Count);
        Assert.True(rows > minimumRows, $"the workload produced only {rows} changelog rows");
        Assert.True(moves > minimumMoves, $"the workload moved only {moves} rows between partitions");
        AuditComparison.AssertSame("the changelog", expected, await AuditComparison.ActualChangelogAsync(ConnectionString));
        AuditComparison.AssertSame("sync_rule_failures", expectedFailures, await AuditComparison.ActualRuleFailuresAsync(ConnectionString));
        return (rows, moves);
    }

    public void Dispose() => File.Delete(_scriptFile);

    /// <summary>The audit trail in audit order, and how many rows moved between partitions (a DELETE of (id, p), then an INSERT of (id, q)).</summary>
    private async Task<(List<AuditedChange> Changes, int Moves)> AuditedChangesAsync()
    {
        var changes = new List<AuditedChange>();
        await using (var connection = new NpgsqlConnection(ConnectionString))
        {
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand("SELECT record_id, op, user_id, deleted FROM audit ORDER BY n", connection);
            await using var reader = await command.ExecuteReaderAsync();
            while (await reader.ReadAsync())
                changes.Add(new AuditedChange(reader.GetString(0), reader.GetString(1), reader.GetString(2), reader.GetBoolean(3)));
        }
        var moves = await Sql.ScalarAsync<long>(ConnectionString, """
            SELECT count(*) FROM audit d JOIN audit i ON i.n = d.n + 1
            WHERE d.op = 'DELETE' AND i.op = 'INSERT' AND (d.record_id::jsonb ->> 0) = (i.record_id::jsonb ->> 0) AND d.record_id <> i.record_id
            """);
        return (changes, (int)moves);
    }

    private static string Invariant(int value) => value.ToString(CultureInfo.InvariantCulture);
}
