using System.Diagnostics;
using System.Globalization;
using Npgsql;
using Synchro.Pipeline.LocalPostgres;

namespace Synchro.Pipeline.Tests.Pipeline;

/// <summary>Runs pgbench (the server's own, else the newest installed) with a custom script against a test database.</summary>
internal static class Pgbench
{
    public static Process Start(LocalPostgresServer server, string connectionString, string script, params string[] arguments)
    {
        var builder = new NpgsqlConnectionStringBuilder(connectionString);
        var start = new ProcessStartInfo(server.ClientProgram("pgbench"))
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var arg in new[] { "-n", "-f", script, "-h", builder.Host!, "-p", builder.Port.ToString(CultureInfo.InvariantCulture), "-U", builder.Username! }.Concat(arguments).Append(builder.Database!))
            start.ArgumentList.Add(arg);
        if (!string.IsNullOrEmpty(builder.Password))
            start.Environment["PGPASSWORD"] = builder.Password;
        return Process.Start(start)!;
    }

    /// <summary>
    /// Runs pgbench to its end (<paramref name="timeout"/> at most) and fails unless it exits cleanly; returns the
    /// transactions it processed.
    /// </summary>
    public static async Task<long> RunAsync(LocalPostgresServer server, string connectionString, string script, TimeSpan timeout, params string[] arguments)
    {
        using var pgbench = Start(server, connectionString, script, arguments);
        var output = pgbench.StandardOutput.ReadToEndAsync();
        var errors = pgbench.StandardError.ReadToEndAsync();
        try
        {
            await pgbench.WaitForExitAsync().WaitAsync(timeout);
        }
        catch (TimeoutException)
        {
            pgbench.Kill();
            throw;
        }
        Assert.True(pgbench.ExitCode == 0, $"pgbench failed (exit {pgbench.ExitCode}): {await errors}");
        var processed = (await output).Split('\n').Single(line => line.StartsWith("number of transactions actually processed:", StringComparison.Ordinal));
        return long.Parse(processed.Split(':')[1].Trim().Split('/')[0], CultureInfo.InvariantCulture);
    }
}
