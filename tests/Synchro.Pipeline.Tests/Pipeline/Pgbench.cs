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
}
