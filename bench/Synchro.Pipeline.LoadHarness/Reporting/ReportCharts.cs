using Synchro.Pipeline.LoadHarness.SteadyState;

namespace Synchro.Pipeline.LoadHarness.Reporting;

/// <summary>One SVG file of the report: its name beside the Markdown, the alt text it is embedded with, its content.</summary>
internal sealed record ReportChart(string FileName, string AltText, string Svg);

/// <summary>The steady state's pictures: throughput and lag over time, and the commit-to-changelog latency distribution.</summary>
internal static class ReportCharts
{
    public const string ThroughputFile = "load-harness-throughput.svg";
    public const string LagTimeFile = "load-harness-lag-time.svg";
    public const string LagBytesFile = "load-harness-lag-bytes.svg";
    public const string LatencyFile = "load-harness-latency.svg";

    // Changes committed over the trailing second: 100 ms samples alone would show batch boundaries, not a rate.
    private const double ThroughputWindowSeconds = 1.0;

    /// <summary>The charts of a steady state that ran and sampled; none otherwise.</summary>
    public static IReadOnlyList<ReportChart> Of(SteadyStateResult? steady)
    {
        if (steady is not { Error: null } s || s.Timeline.Count == 0)
            return [];
        var timeline = s.Timeline;
        var stopped = s.PgbenchSeconds;
        var throughput = Throughput(timeline);
        var lagMilliseconds = timeline.Select(t => new ChartPoint(t.Seconds, t.LagSeconds is { } lag ? lag * 1000 : double.NaN)).ToList();
        var lagKilobytes = timeline.Select(t => new ChartPoint(t.Seconds, t.LagBytes is { } lag ? lag / 1e3 : double.NaN)).ToList();
        var cdf = s.LatencyCdf.Select(q => new ChartPoint(q.Milliseconds, q.Fraction * 100)).ToList();
        var clients = $"pgbench, {s.Clients} clients, {s.Seconds} s";
        return
        [
            new(ThroughputFile, "changes committed per second over time",
                SvgChart.Render(new ChartSpec($"Changes committed per second ({clients})", "seconds since pgbench started", "changes/s (trailing 1 s)",
                    [new("pipeline", throughput), PgbenchStop(stopped, throughput)]))),
            new(LagTimeFile, "replication lag in milliseconds over time",
                SvgChart.Render(new ChartSpec($"Replication lag, time ({clients})", "seconds since pgbench started", "lag, ms",
                    [new("pipeline", lagMilliseconds), PgbenchStop(stopped, lagMilliseconds)]))),
            new(LagBytesFile, "replication lag in kilobytes of WAL over time",
                SvgChart.Render(new ChartSpec($"Replication lag, WAL ({clients})", "seconds since pgbench started", "lag, kB of WAL",
                    [new("pipeline", lagKilobytes), PgbenchStop(stopped, lagKilobytes)]))),
            new(LatencyFile, "distribution of commit-to-changelog latency",
                SvgChart.Render(new ChartSpec($"Commit-to-changelog latency, {s.LatencyMilliseconds?.Samples ?? 0:N0} transactions (CDF)", "latency, ms",
                    "% of transactions within", [new("", cdf)], Step: true))),
        ];
    }

    /// <summary>Changes committed per second over the trailing <see cref="ThroughputWindowSeconds"/>, at each sample that has one before it.</summary>
    internal static List<ChartPoint> Throughput(IReadOnlyList<SteadySample> timeline)
    {
        var points = new List<ChartPoint>();
        var start = 0;
        for (var i = 1; i < timeline.Count; i++)
        {
            while (start + 1 < i && timeline[i].Seconds - timeline[start + 1].Seconds >= ThroughputWindowSeconds)
                start++;
            var span = timeline[i].Seconds - timeline[start].Seconds;
            if (span >= ThroughputWindowSeconds)
                points.Add(new(timeline[i].Seconds, (timeline[i].ChangesCommitted - timeline[start].ChangesCommitted) / span));
        }
        return points;
    }

    /// <summary>A vertical line where pgbench stopped, over the height of <paramref name="data"/>; the time after it is the catch-up.</summary>
    private static ChartSeries PgbenchStop(double seconds, IReadOnlyList<ChartPoint> data)
    {
        var top = data.Select(p => p.Y).Where(double.IsFinite).DefaultIfEmpty(0).Max();
        return new("pgbench stopped", [new(seconds, 0), new(seconds, top)]);
    }
}
