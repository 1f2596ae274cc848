using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;

namespace Synchro.Pipeline.LoadHarness.ServerCost;

/// <summary>
/// <c>pg_waldump</c> of the server's own major version over an LSN range of its <c>pg_wal</c>: the totals of
/// <c>--stats</c>, and (on request) the bytes per relation from the records themselves.
/// </summary>
/// <remarks>
/// A record is put on the relation of its first block reference (<c>rel spc/db/relfilenode</c>); records without one
/// on their resource manager. Its full-page images' bytes are the record's total length less its length without them
/// (pg_waldump's <c>len (rec/tot)</c>), its images the <c>FPW</c> marks.
/// </remarks>
internal sealed partial class WalDump(string program, string walDirectory)
{
    /// <summary>pg_waldump beside the server's binaries, else in the Debian layout of the same major version; null when neither exists (a WAL format is read by its own major only).</summary>
    public static WalDump? Find(string serverBinDirectory, int serverMajor, string dataDirectory)
    {
        var program = new[] { serverBinDirectory, $"/usr/lib/postgresql/{serverMajor.ToString(CultureInfo.InvariantCulture)}/bin" }
            .Select(d => Path.Combine(d, "pg_waldump"))
            .FirstOrDefault(File.Exists);
        return program is null ? null : new WalDump(program, Path.Combine(dataDirectory, "pg_wal"));
    }

    public async Task<WalDumpTotals> TotalsAsync(string startLsn, string endLsn, CancellationToken ct)
    {
        WalDumpTotals? totals = null;
        await RunAsync(["--stats", "-s", startLsn, "-e", endLsn], line => totals = ParseTotals(line) ?? totals, ct);
        return totals ?? throw new InvalidOperationException($"pg_waldump --stats from {startLsn} to {endLsn} printed no Total line");
    }

    /// <summary>Bytes per relation key (<c>db/relfilenode</c>, or <c>rmgr:Name</c>), unsorted and unnamed.</summary>
    public async Task<Dictionary<string, WalRelationShare>> ByRelationAsync(string startLsn, string endLsn, CancellationToken ct)
    {
        var shares = new Dictionary<string, WalRelationShare>();
        await RunAsync(["-s", startLsn, "-e", endLsn], line =>
        {
            if (ParseRecord(line) is not { } record)
                return;
            shares[record.Key] = shares.TryGetValue(record.Key, out var known)
                ? known with
                {
                    Records = known.Records + 1,
                    Bytes = known.Bytes + record.Bytes,
                    FullPageImageBytes = known.FullPageImageBytes + record.FullPageImageBytes,
                    FullPageImages = known.FullPageImages + record.FullPageImages,
                }
                : new WalRelationShare(record.Key, 1, record.Bytes, record.FullPageImageBytes, record.FullPageImages);
        }, ct);
        return shares;
    }

    /// <summary>The Total line of <c>pg_waldump --stats</c> ("Total N rec [x%] fpi [y%] combined [100%]"); null for any other line.</summary>
    public static WalDumpTotals? ParseTotals(string line)
    {
        var fields = Numbers(line);
        return fields is ["Total", var n, var rec, var fpi, var combined]
            ? new WalDumpTotals(Long(n), Long(rec), Long(fpi), Long(combined))
            : null;
    }

    /// <summary>One record line of pg_waldump: its key (first block's relation, else its resource manager), total bytes, images' bytes and count; null for any other line.</summary>
    public static (string Key, long Bytes, long FullPageImageBytes, int FullPageImages)? ParseRecord(string line)
    {
        var match = RecordLine().Match(line);
        if (!match.Success)
            return null;
        var rec = Long(match.Groups["rec"].Value);
        var tot = Long(match.Groups["tot"].Value);
        var block = BlockReference().Match(line);
        var key = block.Success ? $"{block.Groups["db"].Value}/{block.Groups["node"].Value}" : "rmgr:" + match.Groups["rmgr"].Value;
        return (key, tot, tot - rec, FullPageWrite().Count(line));
    }

    private async Task RunAsync(IEnumerable<string> arguments, Action<string> onLine, CancellationToken ct)
    {
        var start = new ProcessStartInfo(program) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        start.ArgumentList.Add("-p");
        start.ArgumentList.Add(walDirectory);
        foreach (var argument in arguments)
            start.ArgumentList.Add(argument);
        using var process = Process.Start(start) ?? throw new InvalidOperationException($"could not start {program}");
        var errors = process.StandardError.ReadToEndAsync(ct);
        while (await process.StandardOutput.ReadLineAsync(ct) is { } line)
            onLine(line);
        await process.WaitForExitAsync(ct);
        if (process.ExitCode != 0)
            throw new InvalidOperationException($"{program} {string.Join(' ', start.ArgumentList)} exited with {process.ExitCode}: {(await errors).Trim()}");
    }

    // The line without its "(x%)" and "[x%]" columns, split on blanks.
    private static string[] Numbers(string line)
        => Bracketed().Replace(line, " ").Split(' ', StringSplitOptions.RemoveEmptyEntries);

    private static long Long(string value) => long.Parse(value, NumberStyles.None, CultureInfo.InvariantCulture);

    [GeneratedRegex(@"\([^)]*\)|\[[^\]]*\]")]
    private static partial Regex Bracketed();

    [GeneratedRegex(@"^rmgr: (?<rmgr>\S+)\s+len \(rec/tot\):\s*(?<rec>\d+)/\s*(?<tot>\d+),")]
    private static partial Regex RecordLine();

    [GeneratedRegex(@"blkref #\d+: rel \d+/(?<db>\d+)/(?<node>\d+)")]
    private static partial Regex BlockReference();

    [GeneratedRegex(@"\bFPW\b")]
    private static partial Regex FullPageWrite();
}
