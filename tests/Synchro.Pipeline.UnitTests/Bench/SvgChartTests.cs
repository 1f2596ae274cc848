using System.Globalization;
using System.Xml.Linq;
using Synchro.Pipeline.LoadHarness.Reporting;
using Synchro.Pipeline.LoadHarness.SteadyState;

namespace Synchro.Pipeline.Tests.Bench;

/// <summary>The load harness's SVG chart writer: well-formed whatever the data, axes that cover it, and the report's charts from a steady state.</summary>
public sealed class SvgChartTests
{
    private static readonly XNamespace s_svg = "http://www.w3.org/2000/svg";

    [Fact]
    public void A_line_chart_is_svg_with_title_axis_labels_legend_and_one_line_per_series()
    {
        var svg = SvgChart.Render(new ChartSpec("Lag <ms> & bytes", "seconds", "lag, ms",
            [new("pipeline", Points((0, 1), (1, 5), (2, 3))), new("pgbench \"stopped\"", Points((1.5, 0), (1.5, 5)))]));

        var root = XDocument.Parse(svg).Root!;
        Assert.Equal(s_svg + "svg", root.Name);
        var texts = root.Elements(s_svg + "text").Select(t => t.Value).ToList();
        Assert.Contains("Lag <ms> & bytes", texts);
        Assert.Contains("seconds", texts);
        Assert.Contains("lag, ms", texts);
        Assert.Contains("pipeline", texts);
        Assert.Contains("pgbench \"stopped\"", texts);
        // The axes' frame, then one line per series.
        var lines = root.Elements(s_svg + "polyline").Skip(1).ToList();
        Assert.Equal(2, lines.Count);
        Assert.Equal(3, lines[0].Attribute("points")!.Value.Split(' ', StringSplitOptions.RemoveEmptyEntries).Length);
    }

    [Theory]
    [InlineData(new[] { 0.0, 1.0 })]
    [InlineData(new[] { 3.0, 17.2, 9.9 })]
    [InlineData(new[] { 0.0012, 0.0049 })]
    [InlineData(new[] { -250.0, 1234.5 })]
    [InlineData(new[] { -7.0, -3.0 })]
    [InlineData(new[] { 1_000_000.0, 1_000_003.0 })]
    [InlineData(new[] { 42.0 })]
    [InlineData(new[] { 0.0 })]
    [InlineData(new[] { 987_654_321.0, 12.0 })]
    public void Ticks_are_ascending_round_and_cover_the_data(double[] values)
    {
        var ticks = AxisTicks.For(values);

        Assert.True(ticks.Length is >= 2 and <= 12, string.Join(", ", ticks));
        Assert.True(ticks[0] <= values.Min(), $"first tick {ticks[0]} above {values.Min()}");
        Assert.True(ticks[^1] >= values.Max(), $"last tick {ticks[^1]} below {values.Max()}");
        var step = ticks[1] - ticks[0];
        Assert.True(step > 0);
        for (var i = 1; i < ticks.Length; i++)
            Assert.Equal(step, ticks[i] - ticks[i - 1], step * 1e-9);
        // A round step: 1, 2, 2.5 or 5 times a power of ten.
        var mantissa = step / Math.Pow(10, Math.Floor(Math.Log10(step)));
        Assert.Contains([1, 2, 2.5, 5, 10], m => Math.Abs(m - mantissa) < 1e-9);
        // Labels are distinct, so no two ticks read the same.
        Assert.Equal(ticks.Length, ticks.Select(t => AxisTicks.Label(t, ticks)).Distinct().Count());
    }

    [Fact]
    public void The_axis_starts_at_zero_for_values_that_are_not_negative()
    {
        Assert.Equal(0, AxisTicks.For([120.0, 180.0])[0]);
        Assert.Equal(["0", "50", "100", "150", "200"], AxisTicks.For([120.0, 180.0]).Select(t => AxisTicks.Label(t, AxisTicks.For([120.0, 180.0]))));
    }

    [Fact]
    public void Tick_labels_use_k_M_G_and_the_decimals_the_step_needs()
    {
        var ticks = AxisTicks.For([0.0, 2_400_000.0]);
        Assert.Equal("0", AxisTicks.Label(0, ticks));
        Assert.Equal("0.5M", AxisTicks.Label(500_000, ticks));
        Assert.Equal("2.5M", AxisTicks.Label(2_500_000, ticks));
        Assert.Equal("0.0025", AxisTicks.Label(0.0025, AxisTicks.For([0.0, 0.012])));
        Assert.Equal("15k", AxisTicks.Label(15_000, AxisTicks.For([0.0, 24_000.0])));
    }

    [Fact]
    public void Empty_series_and_no_series_give_unit_axes_and_say_no_data()
    {
        foreach (var series in new IReadOnlyList<ChartSeries>[] { [], [new("pipeline", [])] })
        {
            var root = XDocument.Parse(SvgChart.Render(new ChartSpec("empty", "x", "y", series))).Root!;
            Assert.Contains("no data", root.Elements(s_svg + "text").Select(t => t.Value));
            Assert.Single(root.Elements(s_svg + "polyline"));
        }
        Assert.Equal([0, 1], [AxisTicks.For([])[0], AxisTicks.For([])[^1]]);
    }

    [Fact]
    public void NaN_and_infinities_are_gaps_never_coordinates()
    {
        var svg = SvgChart.Render(new ChartSpec("gaps", "x", "y",
            [new("a", Points((0, 1), (1, double.NaN), (2, 3), (3, 4), (double.PositiveInfinity, 2), (5, double.NegativeInfinity), (6, 2)))]));

        Assert.DoesNotContain("NaN", svg, StringComparison.Ordinal);
        Assert.DoesNotContain("Infinity", svg, StringComparison.Ordinal);
        Assert.DoesNotContain("∞", svg, StringComparison.Ordinal);
        var root = XDocument.Parse(svg).Root!;
        // Three runs of finite points: (0,1); (2,3),(3,4); (6,2).
        var lines = root.Elements(s_svg + "polyline").Skip(1).Select(l => l.Attribute("points")!.Value.Split(' ', StringSplitOptions.RemoveEmptyEntries).Length).ToList();
        Assert.Equal([1, 2, 1], lines);
        // The x axis ends at or after 6, not at infinity.
        var ticks = AxisTicks.For([0, 1, 2, 3, double.PositiveInfinity, 5, 6, double.NaN]);
        Assert.Equal(0, ticks[0]);
        Assert.InRange(ticks[^1], 6, 10);
    }

    [Fact]
    public void Every_coordinate_lies_inside_the_picture()
    {
        var svg = SvgChart.Render(new ChartSpec("range", "x", "y", [new("a", Points((-3, -1e6), (7, 4e6), (12, 2.5e6)))]));

        var root = XDocument.Parse(svg).Root!;
        foreach (var pair in root.Elements(s_svg + "polyline").SelectMany(l => l.Attribute("points")!.Value.Split(' ', StringSplitOptions.RemoveEmptyEntries)))
        {
            var xy = pair.Split(',').Select(v => double.Parse(v, CultureInfo.InvariantCulture)).ToArray();
            Assert.InRange(xy[0], 0, SvgChart.Width);
            Assert.InRange(xy[1], 0, SvgChart.Height);
        }
    }

    [Fact]
    public void A_step_chart_holds_each_value_until_the_next_point()
    {
        var root = XDocument.Parse(SvgChart.Render(new ChartSpec("cdf", "ms", "%", [new("", Points((1, 0), (2, 50), (4, 100)))], Step: true))).Root!;

        var points = root.Elements(s_svg + "polyline").Last().Attribute("points")!.Value.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(5, points.Length);
        // An unnamed series has no legend: the texts are the title, the ticks and the axis labels.
        Assert.DoesNotContain(root.Elements(s_svg + "line"), l => l.Attribute("stroke-width")?.Value == "3");
    }

    [Fact]
    public void The_report_draws_throughput_lag_and_latency_from_the_steady_state_timeline()
    {
        // 1,000 changes per second for 3 s, then nothing: the trailing-second rate climbs to 1,000 and falls to 0.
        var timeline = Enumerable.Range(0, 51).Select(i => new SteadySample(i * 0.1, i == 0 ? null : 4096, i == 0 ? null : 0.012, Math.Min(i, 30) * 100L)).ToList();
        var steady = new SteadyStateResult
        {
            Seconds = 3,
            Clients = 2,
            PgbenchSeconds = 3,
            Timeline = timeline,
            LatencyMilliseconds = Percentiles.Of([5.0, 7.0, 40.0]),
            LatencyCdf = LatencyQuantile.Cdf([5.0, 7.0, 40.0]),
        };

        var charts = ReportCharts.Of(steady);

        Assert.Equal([ReportCharts.ThroughputFile, ReportCharts.LagTimeFile, ReportCharts.LagBytesFile, ReportCharts.LatencyFile], charts.Select(c => c.FileName));
        Assert.All(charts, c => XDocument.Parse(c.Svg));
        var rate = ReportCharts.Throughput(timeline);
        Assert.Equal(1.0, rate[0].X, 9);
        Assert.Equal(1000, rate.Single(p => Math.Abs(p.X - 2.5) < 1e-9).Y, 6);
        Assert.Equal(0, rate[^1].Y);
        Assert.Equal(5.0, steady.LatencyCdf[0].Milliseconds);
        Assert.Equal(40.0, steady.LatencyCdf[^1].Milliseconds);
        Assert.Equal(1.0, steady.LatencyCdf[^1].Fraction);

        var markdown = MarkdownReport.Render(Report(steady));
        foreach (var chart in charts)
            Assert.Contains($"![{chart.AltText}]({chart.FileName})", markdown, StringComparison.Ordinal);
        Assert.Empty(ReportCharts.Of(steady with { Error = "failed" }));
        Assert.Empty(ReportCharts.Of(null));
    }

    private static List<ChartPoint> Points(params (double X, double Y)[] points) => [.. points.Select(p => new ChartPoint(p.X, p.Y))];

    private static HarnessReport Report(SteadyStateResult steady) => new()
    {
        StartedAt = DateTimeOffset.UnixEpoch,
        Machine = new MachineFacts(2, "15", "Linux", ".NET", "harness"),
        Options = new(),
        Backlog = new(0, 0, "0/0", "0/0", "0/0", 0, 0, 0, 0),
        Contenders = [],
        SteadyState = steady,
    };
}
