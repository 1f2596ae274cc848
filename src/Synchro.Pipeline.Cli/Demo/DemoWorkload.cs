using System.ComponentModel;
using System.Diagnostics;
using System.Globalization;
using Npgsql;

namespace Synchro.Pipeline.Cli.Demo;

/// <summary><c>pgbench</c> (the server's own, else the newest installed) running the demo's transaction mix against the demo database.</summary>
internal sealed class DemoWorkload : IAsyncDisposable
{
    // Orders are picked among the newest few hundred (ids come from the identity sequence), so updates,
    // moves and deletes hit rows that exist. Owner changes and hard deletes skip orders with lines
    // (DemoDatabase's invariant); hard deletes skip soft-deleted orders, whose edges are already gone and
    // whose delete (old key only, REPLICA IDENTITY DEFAULT) would name no bucket.
    private const string Script = """
        \set uid random(1, 50)
        \set back random(0, 300)
        \set cat random(1, 20)
        \set lines random(0, 3)
        \set line random(1, 3)
        \set op random(1, 100)
        \if :op <= 25
        WITH o AS (INSERT INTO orders (user_id, category_id, total, has_lines) VALUES (md5('user' || :uid)::uuid, :cat, :back, :lines > 0) RETURNING id)
        INSERT INTO order_lines (order_id, line_no, product, qty) SELECT o.id, l, 'product ' || (:back + l), l FROM o, generate_series(1, :lines) l;
        \elif :op <= 45
        UPDATE orders SET total = total + 1 WHERE id = (SELECT last_value FROM orders_id_seq) - :back AND deleted_at IS NULL;
        \elif :op <= 55
        UPDATE order_lines SET qty = qty + 1 WHERE order_id = (SELECT last_value FROM orders_id_seq) - :back;
        \elif :op <= 63
        UPDATE orders SET user_id = md5('user' || :uid)::uuid WHERE id = (SELECT last_value FROM orders_id_seq) - :back AND NOT has_lines AND deleted_at IS NULL;
        \elif :op <= 70
        UPDATE orders SET deleted_at = now() WHERE id = (SELECT last_value FROM orders_id_seq) - :back AND deleted_at IS NULL;
        \elif :op <= 75
        DELETE FROM order_lines WHERE order_id = (SELECT last_value FROM orders_id_seq) - :back AND line_no = :line;
        \elif :op <= 78
        DELETE FROM orders WHERE id = (SELECT last_value FROM orders_id_seq) - :back AND NOT has_lines AND deleted_at IS NULL;
        \elif :op <= 86
        UPDATE users SET last_seen = now() WHERE id = md5('user' || :uid)::uuid;
        \elif :op <= 92
        UPDATE categories SET revision = revision + 1 WHERE id = :cat;
        \else
        BEGIN;
        UPDATE users SET last_seen = now() WHERE id = md5('user' || :uid)::uuid;
        UPDATE orders SET total = total + 10, category_id = :cat WHERE id = (SELECT last_value FROM orders_id_seq) - :back AND deleted_at IS NULL;
        UPDATE order_lines SET qty = qty + 1 WHERE order_id = (SELECT last_value FROM orders_id_seq) - :back;
        UPDATE categories SET revision = revision + 1 WHERE id = :cat;
        COMMIT;
        \endif
        """;

    // Deadlocks are retried by pgbench rather than aborting a client (PostgreSQL 15+).
    private const string MaxTries = "10";

    private const string ProcessedPrefix = "number of transactions actually processed:";

    private readonly Process _process;
    private readonly string _scriptFile;
    private readonly Task<string> _output;
    private readonly Task<string> _errors;

    private DemoWorkload(Process process, string scriptFile)
    {
        _process = process;
        _scriptFile = scriptFile;
        _output = process.StandardOutput.ReadToEndAsync();
        _errors = process.StandardError.ReadToEndAsync();
    }

    /// <summary>Starts pgbench for <paramref name="seconds"/> with <paramref name="clients"/> clients, at most <paramref name="rate"/> transactions/s (0: unthrottled).</summary>
    /// <exception cref="DemoException">pgbench could not be started.</exception>
    public static async Task<DemoWorkload> StartAsync(string pgbench, string connectionString, int seconds, int clients, int rate, CancellationToken ct)
    {

        var scriptFile = Path.Combine(Path.GetTempPath(), $"synchro-demo-{Guid.NewGuid():N}.sql");
        await File.WriteAllTextAsync(scriptFile, Script, ct).ConfigureAwait(false);

        var connection = new NpgsqlConnectionStringBuilder(connectionString);
        var start = new ProcessStartInfo(pgbench)
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        List<string> arguments =
        [
            "-n", "-f", scriptFile,
            "-h", connection.Host!, "-p", Invariant(connection.Port), "-U", connection.Username!,
            "-c", Invariant(clients), "-j", Invariant(Math.Min(clients, Environment.ProcessorCount)),
            "-T", Invariant(seconds), "--max-tries", MaxTries,
        ];
        if (rate > 0)
            arguments.AddRange(["-R", Invariant(rate)]);
        arguments.Add(connection.Database!);
        foreach (var argument in arguments)
            start.ArgumentList.Add(argument);

        // Nothing from the caller's libpq environment (PGOPTIONS, PGSSLMODE, ...) may change the run.
        foreach (var name in start.Environment.Keys.Where(k => k.StartsWith("PG", StringComparison.Ordinal)).ToList())
            start.Environment.Remove(name);
        start.Environment["LC_ALL"] = "C";
        // The password goes in the environment (readable by this user only), never on the command line (readable by all).
        if (!string.IsNullOrEmpty(connection.Password))
            start.Environment["PGPASSWORD"] = connection.Password;

        try
        {
            var process = Process.Start(start) ?? throw new DemoException($"Could not start {pgbench}.");
            process.StandardInput.Close();
            return new DemoWorkload(process, scriptFile);
        }
        catch (Win32Exception e)
        {
            File.Delete(scriptFile);
            throw new DemoException($"Could not start {pgbench}: {e.Message}");
        }
    }

    /// <summary>Waits for pgbench to finish; returns the transactions it processed.</summary>
    /// <exception cref="DemoException">pgbench failed; the message has its error output.</exception>
    public async Task<long> WaitAsync(CancellationToken ct)
    {
        await _process.WaitForExitAsync(ct).ConfigureAwait(false);
        var output = await _output.ConfigureAwait(false);
        var errors = await _errors.ConfigureAwait(false);
        if (_process.ExitCode != 0)
            throw new DemoException($"pgbench failed (exit {_process.ExitCode}): {errors.Trim()}") { ExitCode = ExitCodes.Unexpected };

        var processed = output.Split('\n').FirstOrDefault(line => line.StartsWith(ProcessedPrefix, StringComparison.Ordinal))
            ?? throw new DemoException($"pgbench did not report its transactions: {output.Trim()}") { ExitCode = ExitCodes.Unexpected };
        var count = processed[ProcessedPrefix.Length..].Trim().Split('/')[0];
        return long.Parse(count, NumberStyles.None, CultureInfo.InvariantCulture);
    }

    /// <summary>Kills pgbench if it still runs (interrupted demo) and deletes the script.</summary>
    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                await _process.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
            }
        }
        catch (InvalidOperationException)
        {
        }
        finally
        {
            _process.Dispose();
            File.Delete(_scriptFile);
        }
    }

    private static string Invariant(int value) => value.ToString(CultureInfo.InvariantCulture);
}
