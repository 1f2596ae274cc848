using Npgsql;
using Synchro.Pipeline.Changelog;
using Synchro.Pipeline.Cli.Demo;
using Synchro.Pipeline.Protocol;
using Synchro.Pipeline.Tests.Infrastructure;

namespace Synchro.Pipeline.Tests.Cli;

/// <summary>
/// The demo's verifier against a real changelog written by the pipeline: it passes on it, and fails on
/// every kind of damage, so its "verification passed" cannot be vacuous.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class ChangelogVerifierTests(PostgresServerFixture postgres)
{
    // Slots are per server, and the server is shared by the collection.
    private const string Slot = "demo_verifier";

    // Seeded orders: odd ids have no lines, even ids have two; order g belongs to user g % 50 + 1.
    private const string Scenario = """
        UPDATE orders SET user_id = md5('user7')::uuid WHERE id = 1;
        UPDATE orders SET deleted_at = now() WHERE id = 3;
        DELETE FROM orders WHERE id = 5;
        UPDATE orders SET total = total + 1 WHERE id = 2;
        UPDATE order_lines SET qty = qty + 1 WHERE order_id = 4;
        DELETE FROM order_lines WHERE order_id = 6 AND line_no = 1;
        UPDATE users SET last_seen = now() WHERE id = md5('user1')::uuid;
        UPDATE categories SET revision = revision + 1 WHERE id = 1;
        BEGIN;
        WITH o AS (INSERT INTO orders (user_id, has_lines) VALUES (md5('user9')::uuid, true) RETURNING id)
        INSERT INTO order_lines (order_id, line_no, product) SELECT o.id, l, 'p' FROM o, generate_series(1, 3) l;
        UPDATE orders SET user_id = md5('user8')::uuid WHERE id = 7;
        UPDATE orders SET user_id = md5('user9')::uuid WHERE id = 7;
        COMMIT;
        """;

    // Each damage must make the verification fail, with a discrepancy naming what is wrong.
    private static readonly (string Damage, string Sql, string Reported)[] s_damages =
    [
        ("the delete an owner change leaves in the old bucket is missing",
            "DELETE FROM sync_changelog WHERE seq = (SELECT max(seq) FROM sync_changelog WHERE table_name = 'orders' AND record_id = '1' AND operation = 3)",
            "orders 1 belongs to user:"),
        ("a soft delete is written as an update",
            "UPDATE sync_changelog SET operation = 2 WHERE table_name = 'orders' AND record_id = '3' AND operation = 3",
            "orders 3 is soft-deleted but its latest row"),
        ("a hard delete is missing",
            "DELETE FROM sync_changelog WHERE table_name = 'orders' AND record_id = '5' AND operation = 3",
            "orders 5 is gone from the source but still live"),
        ("a row is in the wrong bucket",
            "UPDATE sync_changelog SET bucket_id = 'user:someone-else' WHERE seq = (SELECT min(seq) FROM sync_changelog WHERE table_name = 'categories')",
            "categories 1"),
        ("a row is written twice",
            "INSERT INTO sync_changelog (bucket_id, table_name, record_id, operation) SELECT bucket_id, table_name, record_id, operation FROM sync_changelog WHERE table_name = 'order_lines' ORDER BY seq DESC LIMIT 1",
            "order_lines"),
        ("a child's rows are missing",
            "DELETE FROM sync_changelog WHERE table_name = 'order_lines' AND record_id = (SELECT max(record_id::bigint)::text FROM sync_changelog WHERE table_name = 'order_lines')",
            "no changelog row in its bucket"),
        ("a row names a record that never changed",
            "INSERT INTO sync_changelog (bucket_id, table_name, record_id, operation) VALUES ('user:x', 'users', 'no-such-user', 1)",
            "users no-such-user"),
        ("inserts and updates are mixed up",
            "UPDATE sync_changelog c SET operation = CASE c.operation WHEN 1 THEN 2 ELSE 1 END WHERE table_name = 'orders' AND record_id = '2'",
            "orders 2: from change 1 on"),
        ("a bucket rule failed",
            "INSERT INTO sync_rule_failures (table_name, record_id, operation, error_text, payload) VALUES ('orders', '2', 2, 'boom', '{}')",
            "sync_rule_failures has 1 row"),
        ("the changelog is empty",
            "TRUNCATE sync_changelog",
            "the changelog is empty"),
    ];

    [Fact]
    public async Task Passes_on_the_pipeline_changelog_and_fails_on_every_kind_of_damage()
    {
        var connectionString = await postgres.CreateDatabaseAsync("demo_verifier");
        await using var database = NpgsqlDataSource.Create(connectionString);
        await DemoDatabase.CreateAsync(database, Slot, CancellationToken.None);

        var workloadEnd = await RunPipelineAsync(connectionString, async () =>
        {
            await DemoDatabase.SeedAsync(database, CancellationToken.None);
            await Sql.ExecuteAsync(connectionString, Scenario);
        });

        var clean = await ChangelogVerifier.VerifyAsync(database, Slot, workloadEnd, CancellationToken.None);
        // Seed: 50 users, 20 categories, 100 orders, 100 lines; then the scenario, whose owner changes add a row each.
        Assert.True(clean.Passed, "the pipeline's own changelog fails verification:\n" + string.Join('\n', clean.Discrepancies));
        Assert.True(clean.AuditedChanges > 280 && clean.ChangelogRows > clean.AuditedChanges, $"{clean.AuditedChanges} changes, {clean.ChangelogRows} rows");
        Assert.Equal(clean.Tables.Values.Select(t => t.Expected.Sum()), clean.Tables.Values.Select(t => t.Written.Sum()));

        var ahead = await ChangelogVerifier.VerifyAsync(database, Slot, workloadEnd + (1L << 30), CancellationToken.None);
        Assert.Contains(ahead.Discrepancies, d => d.Contains("the persisted position", StringComparison.Ordinal));

        await Sql.ExecuteAsync(connectionString, "CREATE TABLE pristine AS SELECT * FROM sync_changelog");
        var undetected = new List<string>();
        foreach (var (damage, sql, reported) in s_damages)
        {
            await Sql.ExecuteAsync(connectionString, $"TRUNCATE sync_changelog, sync_rule_failures; INSERT INTO sync_changelog SELECT * FROM pristine; {sql}");
            var report = await ChangelogVerifier.VerifyAsync(database, Slot, workloadEnd, CancellationToken.None);
            if (report.Passed || !report.Discrepancies.Any(d => d.Contains(reported, StringComparison.Ordinal)))
                undetected.Add($"{damage}: expected a discrepancy with '{reported}', got [{string.Join("; ", report.Discrepancies)}]");
        }
        Assert.True(undetected.Count == 0, string.Join('\n', undetected));
        await Sql.ExecuteAsync(connectionString, $"SELECT pg_drop_replication_slot('{Slot}')");
    }

    [Fact]
    public async Task Fails_when_nothing_was_changed()
    {
        var connectionString = await postgres.CreateDatabaseAsync("demo_verifier_empty");
        await using var database = NpgsqlDataSource.Create(connectionString);
        await DemoDatabase.CreateAsync(database, Slot + "_empty", CancellationToken.None);
        await using (var connection = await database.OpenConnectionAsync())
            await ChangelogSchema.EnsureAsync(connection);
        // The slot is not needed here; an idle slot would hold WAL on the shared server.
        await Sql.ExecuteAsync(connectionString, $"SELECT pg_drop_replication_slot('{Slot}_empty')");

        var report = await ChangelogVerifier.VerifyAsync(database, Slot, null, CancellationToken.None);

        Assert.False(report.Passed);
        Assert.Contains(report.Discrepancies, d => d.Contains("the audit trail is empty", StringComparison.Ordinal));
        Assert.Contains(report.Discrepancies, d => d.Contains("no change of orders was audited", StringComparison.Ordinal));
    }

    /// <summary>Runs the pipeline while <paramref name="changes"/> runs, waits until it caught up, stops it; returns the WAL position it caught up with.</summary>
    private static async Task<Lsn> RunPipelineAsync(string connectionString, Func<Task> changes)
    {
        await using var pipeline = new WalPipeline(new WalPipelineOptions
        {
            ConnectionString = connectionString,
            SlotName = Slot,
            PublicationName = DemoDatabase.PublicationName,
            Tables = DemoDatabase.Registry(),
            StatusInterval = TimeSpan.FromMilliseconds(200),
        });
        using var stop = new CancellationTokenSource();
        var running = pipeline.RunAsync(stop.Token);
        await changes();
        await using var database = NpgsqlDataSource.Create(connectionString);
        var end = await DemoRunner.CurrentWalInsertPositionAsync(database, CancellationToken.None);
        await DemoRunner.WaitForCatchUpAsync(pipeline, running, end, TimeSpan.FromMinutes(1), CancellationToken.None);
        await stop.CancelAsync();
        await running;
        return end;
    }
}
