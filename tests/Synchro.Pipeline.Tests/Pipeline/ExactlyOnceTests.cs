using System.Diagnostics;
using Npgsql;
using Synchro.Pipeline.LocalPostgres;
using Synchro.Pipeline.Tests.Infrastructure;

namespace Synchro.Pipeline.Tests.Pipeline;

/// <summary>
/// Invariant 1 under SIGKILL: a pipeline process killed at random moments under a pgbench workload
/// and restarted each time writes exactly the changelog that an independent trigger-written audit
/// trail implies — nothing missing, nothing twice, each record's rows in order.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class ExactlyOnceTests(PostgresServerFixture postgres)
{
    private const string Slot = "slot_exactly_once";
    private const int Kills = 6;

    private const string Schema = """
        CREATE TABLE kill_orders (id int PRIMARY KEY, user_id text NOT NULL, total int NOT NULL DEFAULT 0, deleted_at timestamptz);
        ALTER TABLE kill_orders REPLICA IDENTITY FULL;
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
        CREATE TRIGGER kill_orders_audit AFTER INSERT OR UPDATE OR DELETE ON kill_orders FOR EACH ROW EXECUTE FUNCTION audit_row();
        CREATE PUBLICATION kill_pub FOR TABLE kill_orders;
        """;

    // Owned rows inserted, updated, moved between owners, soft- and hard-deleted, sometimes several per transaction.
    private const string Workload = """
        \set id random(1, 300)
        \set other random(1, 300)
        \set uid random(1, 8)
        \set op random(1, 100)
        \if :op <= 35
        INSERT INTO kill_orders (id, user_id) VALUES (:id, 'u' || :uid) ON CONFLICT (id) DO NOTHING;
        \elif :op <= 65
        UPDATE kill_orders SET total = total + 1 WHERE id = :id;
        \elif :op <= 77
        UPDATE kill_orders SET user_id = 'u' || :uid WHERE id = :id;
        \elif :op <= 85
        UPDATE kill_orders SET deleted_at = now() WHERE id = :id AND deleted_at IS NULL;
        \elif :op <= 92
        DELETE FROM kill_orders WHERE id = :id;
        \else
        BEGIN;
        INSERT INTO kill_orders (id, user_id) VALUES (:id, 'u' || :uid) ON CONFLICT (id) DO UPDATE SET total = kill_orders.total + 1;
        UPDATE kill_orders SET user_id = 'u' || :uid, deleted_at = NULL WHERE id = :other;
        COMMIT;
        \endif
        """;

    [Fact]
    public async Task Changelog_is_exactly_the_audit_trail_after_repeated_SIGKILL()
    {
        var connectionString = await postgres.CreateDatabaseAsync("exactly_once");
        await ExecuteAsync(connectionString, Schema);
        var random = new Random(20261124);

        var script = Path.Combine(Path.GetTempPath(), $"synchro-workload-{Guid.NewGuid():N}.sql");
        await File.WriteAllTextAsync(script, Workload);
        var host = StartHost(connectionString);
        await WaitForSlotAsync(connectionString);
        using var pgbench = StartPgbench(postgres.Server, connectionString, script);
        try
        {
            for (var kill = 0; kill < Kills; kill++)
            {
                await Task.Delay(random.Next(700, 2500));
                host.Kill();
                await host.WaitForExitAsync();
                host.Dispose();
                host = StartHost(connectionString);
            }
            await pgbench.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(2));
            Assert.True(pgbench.ExitCode == 0, $"pgbench failed: {await pgbench.StandardError.ReadToEndAsync()}");

            // A last transaction after the workload: once it is in the changelog, everything before it is.
            await ExecuteAsync(connectionString, "INSERT INTO kill_orders (id, user_id) VALUES (-1, 'marker')");
            await WaitForMarkerAsync(connectionString, host);
        }
        finally
        {
            host.Kill();
            await host.WaitForExitAsync();
            host.Dispose();
            File.Delete(script);
        }

        var expected = await ExpectedChangelogAsync(connectionString);
        var actual = await ActualChangelogAsync(connectionString);
        Assert.True(expected.Values.Sum(v => v.Count) > 1000, $"the workload produced only {expected.Values.Sum(v => v.Count)} changelog rows");
        foreach (var record in expected.Keys.Union(actual.Keys))
        {
            var want = expected.GetValueOrDefault(record) ?? [];
            var got = actual.GetValueOrDefault(record) ?? [];
            Assert.True(want.SequenceEqual(got), $"record {record}: expected [{string.Join(", ", want)}] but the changelog has [{string.Join(", ", got)}]");
        }
    }

    /// <summary>The reference's edge diff replayed over the audit trail, per record in audit order.</summary>
    private static async Task<Dictionary<string, List<string>>> ExpectedChangelogAsync(string connectionString)
    {
        var result = new Dictionary<string, List<string>>();
        var edges = new Dictionary<string, List<string>>();
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT record_id, op, user_id, deleted FROM audit ORDER BY n", connection);
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            var (record, op, owner, deleted) = (reader.GetString(0), reader.GetString(1), "user:" + reader.GetString(2), reader.GetBoolean(3));
            var rows = result.TryGetValue(record, out var list) ? list : result[record] = [];
            var existing = edges.GetValueOrDefault(record) ?? [];
            if (op == "DELETE" || (op == "UPDATE" && deleted))
            {
                foreach (var bucket in existing.Count > 0 ? existing : [owner])
                    rows.Add($"{bucket} 3");
                edges[record] = [];
                continue;
            }
            rows.Add($"{owner} {(existing.Contains(owner) ? 2 : 1)}");
            rows.AddRange(existing.Where(b => b != owner).Select(b => $"{b} 3"));
            edges[record] = [owner];
        }
        return result;
    }

    private static async Task<Dictionary<string, List<string>>> ActualChangelogAsync(string connectionString)
    {
        var result = new Dictionary<string, List<string>>();
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT record_id, bucket_id, operation FROM sync_changelog ORDER BY seq", connection);
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            var record = reader.GetString(0);
            (result.TryGetValue(record, out var list) ? list : result[record] = []).Add($"{reader.GetString(1)} {reader.GetInt16(2)}");
        }
        return result;
    }

    private static Process StartHost(string connectionString)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
        };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "Synchro.Pipeline.TestHost.dll"));
        foreach (var arg in new[] { connectionString, Slot, "kill_pub", "kill_orders", "user_id", "50" })
            start.ArgumentList.Add(arg);
        var process = Process.Start(start)!;
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    private static Process StartPgbench(LocalPostgresServer server, string connectionString, string script)
    {
        var builder = new NpgsqlConnectionStringBuilder(connectionString);
        var start = new ProcessStartInfo(Path.Combine(server.BinDirectory, "pgbench"))
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var arg in new[] { "-n", "-f", script, "-c", "4", "-j", "2", "-T", "12", "-R", "400", "-h", builder.Host!, "-p", builder.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "-U", builder.Username!, builder.Database! })
            start.ArgumentList.Add(arg);
        return Process.Start(start)!;
    }

    private static async Task WaitForSlotAsync(string connectionString)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!await ScalarAsync<bool>(connectionString, $"SELECT EXISTS (SELECT FROM pg_replication_slots WHERE slot_name = '{Slot}' AND active)"))
        {
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException("The pipeline process did not start streaming in 30 s.");
            await Task.Delay(50);
        }
    }

    private static async Task WaitForMarkerAsync(string connectionString, Process host)
    {
        var deadline = DateTime.UtcNow.AddMinutes(3);
        while (!await ScalarAsync<bool>(connectionString, "SELECT EXISTS (SELECT FROM sync_changelog WHERE record_id = '-1')"))
        {
            if (host.HasExited)
                throw new InvalidOperationException($"The pipeline process exited with code {host.ExitCode}.");
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException("The pipeline did not catch up with the workload in 3 minutes.");
            await Task.Delay(100);
        }
    }

    private static async Task ExecuteAsync(string connectionString, string sql)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }

    private static async Task<T> ScalarAsync<T>(string connectionString, string sql)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        return (T)(await command.ExecuteScalarAsync())!;
    }
}
