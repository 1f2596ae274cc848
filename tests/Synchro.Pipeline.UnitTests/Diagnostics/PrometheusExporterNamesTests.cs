using System.Diagnostics.Metrics;
using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using Synchro.Pipeline.Diagnostics;

namespace Synchro.Pipeline.Tests.Diagnostics;

/// <summary>
/// The naming rule the kit and its tests use (<see cref="PrometheusNames"/>) against OpenTelemetry's own Prometheus
/// exporter: the pipeline's instruments are exported and scraped, and every name the rule gives is a series there.
/// </summary>
public sealed partial class PrometheusExporterNamesTests
{
    [Fact]
    public async Task The_rule_gives_the_names_OpenTelemetrys_Prometheus_exporter_serves()
    {
        var port = FreePort();
        using var services = new ServiceCollection().AddMetrics().BuildServiceProvider();
        using var provider = Sdk.CreateMeterProviderBuilder()
            .AddMeter(PipelineMetrics.MeterName)
            .AddPrometheusHttpListener(o => (o.Host, o.Port) = ("localhost", port))
            .Build();
        using var metrics = InstrumentCatalog.Drive(services.GetRequiredService<IMeterFactory>());

        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
        var text = await http.GetStringAsync(new Uri($"http://localhost:{port}/metrics"));
        var served = Samples().Matches(text).Select(m => m.Groups["name"].Value).ToHashSet(StringComparer.Ordinal);
        var types = TypeLines().Matches(text).ToDictionary(m => m.Groups["name"].Value, m => m.Groups["type"].Value, StringComparer.Ordinal);

        var instruments = InstrumentCatalog.Read();
        var wrong = new List<string>();
        foreach (var instrument in instruments)
        {
            var name = instrument.PrometheusName;
            var expected = instrument.Kind == InstrumentKind.Histogram ? PrometheusNames.HistogramSeries.Select(s => name + s).ToArray() : [name];
            wrong.AddRange(expected.Where(e => !served.Contains(e)).Select(e => $"{instrument.Name}: {e} is not served"));
            // A family's TYPE line names it with or without the counter's _total, as the exposition format has it.
            var family = types.GetValueOrDefault(name) ?? types.GetValueOrDefault(name.EndsWith("_total", StringComparison.Ordinal) ? name[..^6] : name);
            if (family != instrument.Kind.ToString().ToLowerInvariant())
                wrong.Add($"{instrument.Name}: {name} is served as a {family ?? "(no TYPE line)"}");
        }

        Assert.True(wrong.Count == 0, "The rule and the exporter disagree:" + Environment.NewLine + string.Join(Environment.NewLine, wrong) + Environment.NewLine + text);
        Assert.True(instruments.Count >= 22, $"only {instruments.Count} instruments");
    }

    private static int FreePort()
    {
        using var socket = new TcpListener(IPAddress.Loopback, 0);
        socket.Start();
        return ((IPEndPoint)socket.LocalEndpoint).Port;
    }

    [GeneratedRegex(@"^(?<name>synchro_pipeline_[a-zA-Z0-9_:]*)[{ ]", RegexOptions.Multiline)]
    private static partial Regex Samples();

    [GeneratedRegex(@"^# TYPE (?<name>\S+) (?<type>\S+)$", RegexOptions.Multiline)]
    private static partial Regex TypeLines();
}
