using System.Globalization;
using Synchro.Pipeline.LoadHarness.Contenders;

namespace Synchro.Pipeline.LoadHarness.Reporting;

/// <summary>Issue 5's goals, each with what this run measured and whether it is met.</summary>
internal static class GoalTable
{
    private const double MinReadRatio = 1.0;
    private const double MaxReadCpuPerMillion = 5.0;
    private const double MaxCopyRatio = 1.3;
    private const double MinGoRatio = 50;
    private const double MaxEndToEndBytesPerChange = 64;
    private const double MaxPeakRssMegabytes = 200;
    private const double MinTpsRatio = 0.9;
    private const double MaxLatencyP50Ms = 20;
    private const double MaxLatencyP99Ms = 100;
    private const int GoalSteadySeconds = 60;

    public static IReadOnlyList<GoalRow> Evaluate(HarnessReport report)
    {
        var recv = report.Find(ContenderNames.PgRecvLogical);
        var read = report.Find(ContenderNames.OursReadOnly);
        var e2e = report.Find(ContenderNames.OursEndToEnd);
        var go = report.Find(ContenderNames.GoPerChange);
        var copy = report.Find(ContenderNames.BinaryCopy);
        var steady = report.SteadyState is { Error: null } s ? s : null;
        var rows = new List<GoalRow>();

        var readRatio = Ratio(read?.ChangesPerSecond, recv?.ChangesPerSecond);
        rows.Add(new("1a", "read path (writing off) vs pg_recvlogical, changes/s", $">= {MinReadRatio:F1}x", Times(readRatio), AtLeast(readRatio, MinReadRatio)));
        var readCpu = read?.CpuSecondsPerMillionChanges;
        rows.Add(new("1b", "read path client CPU per million changes", $"<= {MaxReadCpuPerMillion:F0} s", Format(readCpu, "F1", " s"), AtMost(readCpu, MaxReadCpuPerMillion)));

        var copyRatio = Ratio(e2e?.WallSeconds, copy?.WallSeconds);
        rows.Add(new("2", "end-to-end time vs bare binary COPY of the same rows", $"<= {MaxCopyRatio:F1}x", Times(copyRatio), AtMost(copyRatio, MaxCopyRatio)));

        var goRatio = Ratio(e2e?.ChangesPerSecond, go?.ChangesPerSecond);
        rows.Add(new("3", "end-to-end vs Go per-change design, changes/s", $">= {MinGoRatio:F0}x", Times(goRatio), AtLeast(goRatio, MinGoRatio)));

        rows.Add(new("4a", "allocation on the parse and decode path", "0 B per row",
            $"{Format(read?.AllocatedBytesPerChange, "F0", " B")} per change for the whole read path (reader + parse + decode + batching); per-row parse/decode budget is BenchmarkDotNet's", null));
        var e2eBytes = e2e?.AllocatedBytesPerChange;
        rows.Add(new("4b", "allocation end to end, amortised", $"<= {MaxEndToEndBytesPerChange:F0} B per change", Format(e2eBytes, "F0", " B"), AtMost(e2eBytes, MaxEndToEndBytesPerChange)));

        var rss = e2e?.PeakRssBytes / 1e6;
        rows.Add(new("5a", $"peak RSS end to end, {report.Backlog.Changes:N0}-change backlog",
            $"<= {MaxPeakRssMegabytes:F0} MB", Format(rss, "F0", " MB"), AtMost(rss, MaxPeakRssMegabytes)));
        var big = report.BigTransaction is { Succeeded: true } b ? b.PeakRssBytes / 1e6 : null;
        rows.Add(new("5b", $"peak RSS end to end, one transaction of {report.Options.BigTransactionRows:N0} rows",
            $"<= {MaxPeakRssMegabytes:F0} MB", Format(big, "F0", " MB"), AtMost(big, MaxPeakRssMegabytes)));

        var note = steady is not null && steady.Seconds != GoalSteadySeconds ? $" ({steady.Seconds} s run, goal is {GoalSteadySeconds} s)" : "";
        var tps = steady?.TpsRatio;
        var decodingOnly = steady?.PgRecvLogicalTpsRatio is { } ceiling ? $" (pg_recvlogical consuming: {ceiling * 100:F0} %)" : "";
        rows.Add(new("6a", "primary tps with the pipeline consuming vs without" + note, $">= {MinTpsRatio:P0}", Format(tps * 100, "F0", " %") + decodingOnly, AtLeast(tps, MinTpsRatio)));
        var p50 = steady?.LatencyMilliseconds?.P50;
        rows.Add(new("6b", "commit-to-changelog latency p50" + note, $"<= {MaxLatencyP50Ms:F0} ms", Format(p50, "F1", " ms"), AtMost(p50, MaxLatencyP50Ms)));
        var p99 = steady?.LatencyMilliseconds?.P99;
        rows.Add(new("6c", "commit-to-changelog latency p99" + note, $"<= {MaxLatencyP99Ms:F0} ms", Format(p99, "F1", " ms"), AtMost(p99, MaxLatencyP99Ms)));
        return rows;
    }

    private static bool? AtLeast(double? value, double goal) => value is { } v ? v >= goal : null;

    private static bool? AtMost(double? value, double goal) => value is { } v ? v <= goal : null;

    private static double? Ratio(double? a, double? b) => a is { } x && b is { } y && y > 0 ? x / y : null;

    private static string Times(double? ratio) => Format(ratio, "F2", "x");

    private static string Format(double? value, string format, string unit)
        => value is { } v ? v.ToString(format, CultureInfo.InvariantCulture) + unit : "not measured";
}
