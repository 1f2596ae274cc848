using System.Globalization;
using System.Text;

namespace Synchro.Pipeline.LoadHarness.Reporting;

/// <summary>One named line of a chart; points whose coordinates are NaN or infinite are gaps in the line.</summary>
internal sealed record ChartSeries(string Name, IReadOnlyList<ChartPoint> Points);

internal readonly record struct ChartPoint(double X, double Y);

/// <summary>What a chart shows: its title, axis labels and lines; with <c>Step</c> each point's value holds until the next point (a CDF) instead of a straight line between them.</summary>
internal sealed record ChartSpec(string Title, string XLabel, string YLabel, IReadOnlyList<ChartSeries> Series, bool Step = false);

/// <summary>
/// A self-contained SVG line chart (axes, ticks, grid, labels, a legend of the named series) for the Markdown report, which embeds it as a
/// file: GitHub renders <c>![..](chart.svg)</c>, not inline SVG.
/// </summary>
/// <remarks>
/// Always well-formed XML, whatever the data: non-finite values are dropped (a gap), an empty chart gets unit axes and
/// says "no data", a flat one gets a range around its value. Both axes start at zero when the data is not negative.
/// </remarks>
internal static class SvgChart
{
    public const int Width = 760;
    public const int Height = 380;

    // Plot area insets: room for tick labels and axis titles left and below, the title above.
    private const int Left = 78;
    private const int Right = 24;
    private const int Top = 58;

    // An upper bound of a 12 px sans-serif character's width, for laying out the legend.
    private const double LegendCharWidth = 7;
    private const int Bottom = 56;

    // Colour-blind-safe (Okabe–Ito), in series order.
    private static readonly string[] s_palette = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9"];

    public static string Render(ChartSpec chart)
    {
        var finite = chart.Series.SelectMany(s => s.Points).Where(p => double.IsFinite(p.X) && double.IsFinite(p.Y)).ToList();
        var xTicks = AxisTicks.For(finite.Select(p => p.X));
        var yTicks = AxisTicks.For(finite.Select(p => p.Y));
        var (x0, x1) = (xTicks[0], xTicks[^1]);
        var (y0, y1) = (yTicks[0], yTicks[^1]);
        const double plotWidth = Width - Left - Right;
        const double plotHeight = Height - Top - Bottom;
        double X(double x) => Left + (x - x0) / (x1 - x0) * plotWidth;
        double Y(double y) => Top + plotHeight - (y - y0) / (y1 - y0) * plotHeight;

        var svg = new StringBuilder();
        svg.Append(Invariant($"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{Width}\" height=\"{Height}\" viewBox=\"0 0 {Width} {Height}\" font-family=\"sans-serif\" font-size=\"12\">\n"));
        svg.Append(Invariant($"<rect width=\"{Width}\" height=\"{Height}\" fill=\"#ffffff\"/>\n"));
        svg.Append(Invariant($"<text x=\"{Width / 2}\" y=\"24\" text-anchor=\"middle\" font-size=\"15\" font-weight=\"bold\">{Escape(chart.Title)}</text>\n"));

        foreach (var tick in yTicks)
        {
            var y = Y(tick);
            svg.Append(Invariant($"<line x1=\"{Left}\" y1=\"{y:0.##}\" x2=\"{Width - Right}\" y2=\"{y:0.##}\" stroke=\"#e4e4e4\"/>\n"));
            svg.Append(Invariant($"<text x=\"{Left - 6}\" y=\"{y + 4:0.##}\" text-anchor=\"end\">{Escape(AxisTicks.Label(tick, yTicks))}</text>\n"));
        }
        foreach (var tick in xTicks)
        {
            var x = X(tick);
            svg.Append(Invariant($"<line x1=\"{x:0.##}\" y1=\"{Top}\" x2=\"{x:0.##}\" y2=\"{Height - Bottom}\" stroke=\"#f0f0f0\"/>\n"));
            svg.Append(Invariant($"<line x1=\"{x:0.##}\" y1=\"{Height - Bottom}\" x2=\"{x:0.##}\" y2=\"{Height - Bottom + 5}\" stroke=\"#333333\"/>\n"));
            svg.Append(Invariant($"<text x=\"{x:0.##}\" y=\"{Height - Bottom + 18}\" text-anchor=\"middle\">{Escape(AxisTicks.Label(tick, xTicks))}</text>\n"));
        }
        svg.Append(Invariant($"<polyline points=\"{Left},{Top} {Left},{Height - Bottom} {Width - Right},{Height - Bottom}\" fill=\"none\" stroke=\"#333333\"/>\n"));
        svg.Append(Invariant($"<text x=\"{Left + plotWidth / 2:0.##}\" y=\"{Height - 12}\" text-anchor=\"middle\">{Escape(chart.XLabel)}</text>\n"));
        svg.Append(Invariant($"<text transform=\"translate(18,{Top + plotHeight / 2:0.##}) rotate(-90)\" text-anchor=\"middle\">{Escape(chart.YLabel)}</text>\n"));

        if (finite.Count == 0)
            svg.Append(Invariant($"<text x=\"{Left + plotWidth / 2:0.##}\" y=\"{Top + plotHeight / 2:0.##}\" text-anchor=\"middle\" fill=\"#888888\" font-size=\"14\">no data</text>\n"));

        for (var i = 0; i < chart.Series.Count; i++)
        {
            var colour = s_palette[i % s_palette.Length];
            foreach (var segment in Segments(chart.Series[i].Points, chart.Step))
            {
                svg.Append(Invariant($"<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.8\" stroke-linejoin=\"round\" points=\""));
                foreach (var p in segment)
                    svg.Append(Invariant($"{X(p.X):0.##},{Y(p.Y):0.##} "));
                svg.Append("\"/>\n");
            }
        }

        // Legend: one row between the title and the plot, right-aligned, so it never hides a line.
        var named = chart.Series.Select((s, i) => (s.Name, Colour: s_palette[i % s_palette.Length])).Where(s => s.Name.Length > 0).ToList();
        var legendX = (double)Width - Right;
        foreach (var (name, colour) in Enumerable.Reverse(named))
        {
            legendX -= LegendCharWidth * name.Length;
            svg.Append(Invariant($"<text x=\"{legendX:0.##}\" y=\"{Top - 8}\">{Escape(name)}</text>\n"));
            svg.Append(Invariant($"<line x1=\"{legendX - 22:0.##}\" y1=\"{Top - 12}\" x2=\"{legendX - 4:0.##}\" y2=\"{Top - 12}\" stroke=\"{colour}\" stroke-width=\"3\"/>\n"));
            legendX -= 22 + 16;
        }
        svg.Append("</svg>\n");
        return svg.ToString();
    }

    /// <summary>Runs of finite points, split where a point is NaN or infinite; a step chart holds each value until the next x.</summary>
    private static IEnumerable<List<ChartPoint>> Segments(IReadOnlyList<ChartPoint> points, bool step)
    {
        var run = new List<ChartPoint>();
        foreach (var p in points)
        {
            if (!double.IsFinite(p.X) || !double.IsFinite(p.Y))
            {
                if (run.Count > 0)
                    yield return run;
                run = [];
                continue;
            }
            if (step && run.Count > 0)
                run.Add(new ChartPoint(p.X, run[^1].Y));
            run.Add(p);
        }
        if (run.Count > 0)
            yield return run;
    }

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);

    internal static string Escape(string text)
    {
        var escaped = new StringBuilder(text.Length);
        foreach (var c in text)
        {
            escaped.Append(c switch
            {
                '<' => "&lt;",
                '>' => "&gt;",
                '&' => "&amp;",
                '"' => "&quot;",
                // Control characters are not allowed in XML 1.0.
                _ when char.IsControl(c) => " ",
                _ => c.ToString(),
            });
        }
        return escaped.ToString();
    }
}
