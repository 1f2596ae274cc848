using System.Diagnostics;
using System.Globalization;
using Synchro.Pipeline.Replication;
using Synchro.Pipeline.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Synchro.Pipeline.Tests.Pipeline;

/// <summary>
/// Catch-up on a pgbench backlog: the slot exists, pgbench writes the backlog while no pipeline
/// runs, then a pipeline process drains it. Prints the rate and the peak memory; the size is
/// SYNCHRO_BACKLOG_CHANGES (default 60,000 so the suite stays short; the README's figure uses 1,000,000).
/// </summary>
[Collection(PostgresCollection.Name)]
[Trait("Category", "Measurement")]
public sealed class CatchUpMeasurementTests(PostgresServerFixture postgres, ITestOutputHelper output)
{
    private const string Slot = "slot_catch_up";

    // Three changes per transaction: 60 % inserts, 30 % updates, 5 % soft deletes, 5 % owner changes.
    private const string Workload = """
        \set id random(1, 2000000000)
        \set target random(1, 2000000000)
        \set uid random(1, 1000)
        \set op random(1, 100)
        BEGIN;
        INSERT INTO backlog_orders (id, user_id, title) VALUES (:id, 'u' || :uid, 'order ' || :id) ON CONFLICT (id) DO NOTHING;
        INSERT INTO backlog_orders (id, user_id, title) VALUES (:id + 1, 'u' || :uid, 'order ' || :id) ON CONFLICT (id) DO NOTHING;
        \if :op <= 60
        UPDATE backlog_orders SET total = total + 1 WHERE id = :id;
        \elif :op <= 80
        UPDATE backlog_orders SET total = total + 2 WHERE id = :id + 1;
        \elif :op <= 90
        UPDATE backlog_orders SET deleted_at = now() WHERE id = :id;
        \else
        UPDATE backlog_orders SET user_id = 'u' || (:uid + 1) WHERE id = :id;
        \endif
        COMMIT;
        """;

    [Fact]
    public async Task Drains_a_pgbench_backlog()
    {
        var changes = int.Parse(Environment.GetEnvironmentVariable("SYNCHRO_BACKLOG_CHANGES") ?? "60000", CultureInfo.InvariantCulture);
        var connectionString = await postgres.CreateDatabaseAsync("catch_up");
        await Sql.ExecuteAsync(connectionString, """
            CREATE TABLE backlog_orders (id bigint PRIMARY KEY, user_id text NOT NULL, title text NOT NULL, total int NOT NULL DEFAULT 0, deleted_at timestamptz);
            CREATE PUBLICATION backlog_pub FOR TABLE backlog_orders;
            """);
        await ReplicationSlots.CreateIfMissingAsync(connectionString, Slot, twoPhase: false, default);

        var script = Path.Combine(Path.GetTempPath(), $"synchro-backlog-{Guid.NewGuid():N}.sql");
        await File.WriteAllTextAsync(script, Workload);
        try
        {
            var transactionsPerClient = (changes / 3 + 1) / 2;
            using var pgbench = Pgbench.Start(postgres.Server, connectionString, script, "-c", "2", "-j", "2", "-t", transactionsPerClient.ToString(CultureInfo.InvariantCulture));
            await pgbench.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(30));
            Assert.True(pgbench.ExitCode == 0, await pgbench.StandardError.ReadToEndAsync());
        }
        finally
        {
            File.Delete(script);
        }
        var end = await Sql.ScalarAsync<NpgsqlTypes.NpgsqlLogSequenceNumber>(connectionString, "SELECT pg_current_wal_lsn()");
        var backlogBytes = await Sql.ScalarAsync<decimal>(connectionString, $"SELECT pg_wal_lsn_diff('{end}', restart_lsn) FROM pg_replication_slots WHERE slot_name = '{Slot}'");

        var clock = Stopwatch.StartNew();
        using var host = PipelineHostProcess.Start(connectionString, Slot, "backlog_pub", "backlog_orders", "user_id", 10_000);
        await PipelineHostProcess.WaitForSlotAsync(connectionString, Slot);
        long peak = 0;
        while (!await Sql.ScalarAsync<bool>(connectionString, $"SELECT COALESCE((SELECT confirmed_lsn FROM sync_wal_position) >= ('{end}'::pg_lsn - '0/0'::pg_lsn)::bigint - 100000, false) AND EXISTS (SELECT FROM pg_replication_slots WHERE slot_name = '{Slot}' AND confirmed_flush_lsn >= '{end}'::pg_lsn - 100000)"))
        {
            peak = Math.Max(peak, host.PeakResidentBytes());
            Assert.False(host.HasExited, $"the pipeline process exited with code {(host.HasExited ? host.ExitCode : 0)}");
            Assert.True(clock.Elapsed < TimeSpan.FromMinutes(30), "the backlog was not drained in 30 minutes");
            await Task.Delay(100);
        }
        var elapsed = clock.Elapsed;
        peak = Math.Max(peak, host.PeakResidentBytes());
        var decoded = await Sql.ScalarAsync<long>(connectionString, "SELECT count(*) FROM sync_changelog");
        var sourceChanges = await Sql.ScalarAsync<long>(connectionString, "SELECT count(*) FROM backlog_orders") + await Sql.ScalarAsync<long>(connectionString, "SELECT (SELECT n_tup_upd FROM pg_stat_user_tables WHERE relname = 'backlog_orders')");

        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"backlog: {sourceChanges:N0} source changes, {backlogBytes / (1024 * 1024):F0} MiB of WAL; drained in {elapsed.TotalSeconds:F1} s (including process start) = {sourceChanges / elapsed.TotalSeconds:N0} changes/s; {decoded:N0} changelog rows; host peak RSS {peak / (1024.0 * 1024):F0} MiB"));
        Assert.True(decoded >= sourceChanges * 0.9, $"{decoded} changelog rows for {sourceChanges} source changes");
    }
}
