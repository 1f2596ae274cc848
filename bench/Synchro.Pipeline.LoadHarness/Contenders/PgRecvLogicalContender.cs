using System.Diagnostics;
using System.Globalization;
using Npgsql;
using Synchro.Pipeline.LoadHarness.Backlog;

namespace Synchro.Pipeline.LoadHarness.Contenders;

/// <summary>
/// The read ceiling: the server's own <c>pg_recvlogical</c> draining its slot to /dev/null up to the
/// backlog's end LSN, under <c>/usr/bin/time -v</c> for its CPU time and peak RSS when that exists.
/// </summary>
internal static class PgRecvLogicalContender
{
    private const string TimeProgram = "/usr/bin/time";

    public static async Task<ContenderResult> RunAsync(string binDirectory, string connectionString, BacklogInfo backlog, TimeSpan timeout, CancellationToken ct)
    {
        var timed = File.Exists(TimeProgram);
        var start = StartInfo(binDirectory, connectionString, ContenderNames.Slot(ContenderNames.PgRecvLogical), backlog.EndLsn, timed ? TimeProgram : null);
        var exit = await ChildProcess.RunAsync(start, timeout, ct);
        var name = ContenderNames.PgRecvLogical;
        if (exit.TimedOut)
            return new ContenderResult { Name = name, Error = $"timed out after {timeout.TotalSeconds:F0} s (killed)", WallSeconds = exit.Elapsed.TotalSeconds };
        if (exit.ExitCode != 0)
            return new ContenderResult { Name = name, Error = $"exit {exit.ExitCode}: {exit.Error.Trim()}", WallSeconds = exit.Elapsed.TotalSeconds };

        var usage = timed ? ParseTimeOutput(exit.Error) : default;
        return new ContenderResult
        {
            Name = name,
            // Exit 0 with --endpos means it read everything up to the end LSN: the whole backlog.
            ReachedEnd = true,
            Changes = backlog.Changes,
            PgoutputBytes = backlog.PgoutputBytes,
            WallSeconds = exit.Elapsed.TotalSeconds,
            CpuSeconds = usage.Cpu,
            PeakRssBytes = usage.PeakRss,
        };
    }

    /// <summary>
    /// <c>pg_recvlogical --start</c> on <paramref name="slot"/> with the pipeline's pgoutput options, writing to /dev/null,
    /// up to <paramref name="endLsn"/> or (null) until stopped; under <paramref name="timeProgram"/> <c>-v</c> when given.
    /// </summary>
    public static ProcessStartInfo StartInfo(string binDirectory, string connectionString, string slot, string? endLsn, string? timeProgram = null)
    {
        var connection = new NpgsqlConnectionStringBuilder(connectionString);
        var program = Path.Combine(binDirectory, "pg_recvlogical");
        var start = new ProcessStartInfo(timeProgram ?? program);
        if (timeProgram is not null)
        {
            start.ArgumentList.Add("-v");
            start.ArgumentList.Add(program);
        }
        List<string> arguments =
        [
            "-h", connection.Host!, "-p", connection.Port.ToString(CultureInfo.InvariantCulture), "-U", connection.Username!, "-d", connection.Database!,
            "--slot", slot, "--start", "--no-loop",
            "-o", "proto_version=1", "-o", "publication_names=" + BenchSchema.Publication, "-o", "messages=true",
            "-f", "/dev/null",
        ];
        if (endLsn is not null)
            arguments.AddRange(["--endpos", endLsn]);
        foreach (var argument in arguments)
            start.ArgumentList.Add(argument);
        foreach (var variable in start.Environment.Keys.Where(k => k.StartsWith("PG", StringComparison.Ordinal)).ToList())
            start.Environment.Remove(variable);
        if (!string.IsNullOrEmpty(connection.Password))
            start.Environment["PGPASSWORD"] = connection.Password;
        return start;
    }

    private static (double? Cpu, long? PeakRss) ParseTimeOutput(string text)
    {
        double? user = null, system = null;
        long? peak = null;
        foreach (var raw in text.Split('\n'))
        {
            var line = raw.Trim();
            var colon = line.LastIndexOf(':');
            if (colon < 0)
                continue;
            var value = line[(colon + 1)..].Trim();
            if (line.StartsWith("User time (seconds)", StringComparison.Ordinal))
                user = double.Parse(value, CultureInfo.InvariantCulture);
            else if (line.StartsWith("System time (seconds)", StringComparison.Ordinal))
                system = double.Parse(value, CultureInfo.InvariantCulture);
            else if (line.StartsWith("Maximum resident set size (kbytes)", StringComparison.Ordinal))
                peak = long.Parse(value, CultureInfo.InvariantCulture) * 1024;
        }
        return (user + system, peak);
    }
}
