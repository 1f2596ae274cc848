using System.Diagnostics;
using System.Globalization;
using Npgsql;

namespace Synchro.Pipeline.LoadHarness.Backlog;

/// <summary>What one pgbench run did.</summary>
internal sealed record PgbenchResult(long Transactions, double Tps, double Seconds);

/// <summary>Runs the server's own pgbench with <see cref="BenchWorkload.Script"/>.</summary>
internal static class Pgbench
{
    // Lock waits between clients touching the same recent row can end in a deadlock; pgbench retries it.
    private const string MaxTries = "10";

    /// <summary>Runs pgbench with <paramref name="arguments"/> (<c>-t</c> or <c>-T</c>, clients) and parses its summary.</summary>
    /// <exception cref="InvalidOperationException">pgbench failed; the message has its error output.</exception>
    public static async Task<PgbenchResult> RunAsync(string binDirectory, string connectionString, IEnumerable<string> arguments, CancellationToken ct)
    {
        var script = Path.Combine(Path.GetTempPath(), $"synchro-load-{Guid.NewGuid():N}.sql");
        await File.WriteAllTextAsync(script, BenchWorkload.Script, ct);
        try
        {
            var connection = new NpgsqlConnectionStringBuilder(connectionString);
            var start = new ProcessStartInfo(Path.Combine(binDirectory, "pgbench"))
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
            };
            string[] common = ["-n", "-f", script, "-h", connection.Host!, "-p", connection.Port.ToString(CultureInfo.InvariantCulture), "-U", connection.Username!, "--max-tries", MaxTries];
            foreach (var argument in common.Concat(arguments).Append(connection.Database!))
                start.ArgumentList.Add(argument);
            foreach (var name in start.Environment.Keys.Where(k => k.StartsWith("PG", StringComparison.Ordinal)).ToList())
                start.Environment.Remove(name);
            if (!string.IsNullOrEmpty(connection.Password))
                start.Environment["PGPASSWORD"] = connection.Password;

            var clock = Stopwatch.StartNew();
            using var process = Process.Start(start) ?? throw new InvalidOperationException("could not start pgbench");
            var output = process.StandardOutput.ReadToEndAsync(ct);
            var errors = process.StandardError.ReadToEndAsync(ct);
            try
            {
                await process.WaitForExitAsync(ct);
            }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true);
                throw;
            }
            var seconds = clock.Elapsed.TotalSeconds;
            if (process.ExitCode != 0)
                throw new InvalidOperationException($"pgbench failed (exit {process.ExitCode}): {(await errors).Trim()}");
            var text = await output;
            return new PgbenchResult(ParseTransactions(text), ParseTps(text), seconds);
        }
        finally
        {
            File.Delete(script);
        }
    }

    private static long ParseTransactions(string output)
    {
        const string Prefix = "number of transactions actually processed:";
        var line = output.Split('\n').First(l => l.StartsWith(Prefix, StringComparison.Ordinal));
        return long.Parse(line[Prefix.Length..].Trim().Split('/')[0], NumberStyles.None, CultureInfo.InvariantCulture);
    }

    private static double ParseTps(string output)
    {
        const string Prefix = "tps = ";
        var line = output.Split('\n').First(l => l.StartsWith(Prefix, StringComparison.Ordinal));
        return double.Parse(line[Prefix.Length..].Split(' ')[0], NumberStyles.Float, CultureInfo.InvariantCulture);
    }
}
