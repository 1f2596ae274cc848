using System.Text;

namespace Synchro.Pipeline.Tests.Diagnostics;

/// <summary>
/// The Prometheus name OpenTelemetry's Prometheus exporter (OpenTelemetry.Exporter.Prometheus.AspNetCore / .HttpListener)
/// gives an instrument, as docs/deployment.md#prometheus-names states the rule: characters other than ASCII letters,
/// digits and <c>:</c> become <c>_</c> (a run of them one <c>_</c>); the unit, without its <c>{annotation}</c> and
/// spelt out (<c>s</c> seconds, <c>By</c> bytes, <c>a/b</c> a_per_b), is appended unless the name already ends with it;
/// counters end in <c>_total</c>; histograms are the series <c>_bucket</c>, <c>_sum</c> and <c>_count</c>.
/// </summary>
internal static class PrometheusNames
{
    public static readonly string[] HistogramSeries = ["_bucket", "_sum", "_count"];

    public static string Of(string name, string? unit, InstrumentKind kind)
    {
        var prometheus = Sanitize(name, leadingDigit: true);
        var suffix = string.IsNullOrEmpty(unit) ? "" : Unit(unit);
        if (suffix.Length > 0 && !prometheus.EndsWith(suffix, StringComparison.Ordinal)
            && !(kind == InstrumentKind.Counter && prometheus.EndsWith(suffix + "_total", StringComparison.Ordinal)))
        {
            prometheus += "_" + suffix;
        }
        if (kind == InstrumentKind.Counter && !prometheus.EndsWith("_total", StringComparison.Ordinal))
            prometheus += "_total";
        return prometheus;
    }

    /// <summary>A tag key as a Prometheus label: the same character rule as names.</summary>
    public static string Label(string tagKey) => Sanitize(tagKey, leadingDigit: true);

    private static string Unit(string unit)
    {
        var withoutAnnotations = new StringBuilder();
        var inAnnotation = false;
        foreach (var c in unit)
        {
            if (c == '{')
                inAnnotation = true;
            else if (c == '}')
                inAnnotation = false;
            else if (!inAnnotation)
                withoutAnnotations.Append(c);
        }
        var bare = withoutAnnotations.ToString();
        var slash = bare.IndexOf('/', StringComparison.Ordinal);
        var spelt = slash > 0 && slash < bare.Length - 1
            ? Word(bare[..slash]) + "_per_" + PerWord(bare[(slash + 1)..])
            : Word(bare);
        return Sanitize(spelt, leadingDigit: false).Trim('_');
    }

    private static string Word(string unit) => unit switch
    {
        "d" => "days",
        "h" => "hours",
        "min" => "minutes",
        "s" => "seconds",
        "ms" => "milliseconds",
        "us" => "microseconds",
        "ns" => "nanoseconds",
        "By" or "B" => "bytes",
        "KiBy" => "kibibytes",
        "MiBy" => "mebibytes",
        "GiBy" => "gibibytes",
        "KBy" or "KB" => "kilobytes",
        "MBy" or "MB" => "megabytes",
        "GBy" or "GB" => "gigabytes",
        "1" => "",
        "%" => "percent",
        _ => unit,
    };

    private static string PerWord(string unit) => unit switch
    {
        "s" => "second",
        "m" => "minute",
        "h" => "hour",
        "d" => "day",
        _ => unit,
    };

    private static string Sanitize(string text, bool leadingDigit)
    {
        var result = new StringBuilder(text.Length);
        var lastUnderscore = false;
        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            if (leadingDigit && i == 0 && char.IsAsciiDigit(c))
            {
                result.Append('_');
                lastUnderscore = true;
            }
            else if (char.IsAsciiLetterOrDigit(c) || c == ':')
            {
                result.Append(c);
                lastUnderscore = false;
            }
            else if (!lastUnderscore)
            {
                result.Append('_');
                lastUnderscore = true;
            }
        }
        return result.ToString();
    }
}
