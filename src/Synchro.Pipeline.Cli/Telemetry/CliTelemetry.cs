using System.CommandLine;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Reflection;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;
using Synchro.Pipeline.Cli.Configuration;
using Synchro.Pipeline.Diagnostics;

namespace Synchro.Pipeline.Cli.Telemetry;

/// <summary>
/// <c>run</c>'s exports: the pipeline's metrics on a Prometheus scrape endpoint (<c>--metrics-url</c>), and its metrics,
/// spans and logs over OTLP when the standard <c>OTEL_EXPORTER_OTLP_*</c> variables name an endpoint.
/// </summary>
/// <remarks>
/// The OpenTelemetry SDK reads the <c>OTEL_*</c> variables itself (protocol, headers, intervals, <c>OTEL_SERVICE_NAME</c>,
/// <c>OTEL_RESOURCE_ATTRIBUTES</c>). A signal with neither an endpoint nor a scrape URL gets no provider at all, so an
/// unconfigured run pays only for instruments without a listener.
/// </remarks>
internal sealed class CliTelemetry
{
    /// <summary>The <c>service.name</c> unless <c>OTEL_SERVICE_NAME</c> says otherwise.</summary>
    public const string ServiceName = "synchro-pipeline";

    /// <summary>The environment variable <c>--metrics-url</c> defaults to (one underscore: never read as a <c>Synchro__</c> setting).</summary>
    public const string MetricsUrlVariable = "SYNCHRO_METRICS_URL";

    /// <summary>The path that serves the metrics when the scrape URL names none.</summary>
    public const string DefaultScrapePath = "metrics";

    private const string OtlpEndpointVariable = "OTEL_EXPORTER_OTLP_ENDPOINT";

    private readonly Option<string> _metricsUrl = new("--metrics-url")
    {
        Description = $"Serve the metrics for Prometheus to scrape at this URL (http://+:9464/metrics: every address, port 9464; the path defaults to /{DefaultScrapePath}) [default: ${MetricsUrlVariable}, else off]",
        HelpName = "url",
        DefaultValueFactory = _ => Environment.GetEnvironmentVariable(MetricsUrlVariable) is { Length: > 0 } url ? url : null!,
    };

    public CliTelemetry(Command command) => command.Options.Add(_metricsUrl);

    /// <summary>Starts the exports the flag and the environment ask for; dispose the result to flush and stop them.</summary>
    /// <exception cref="SettingsException">The scrape URL is malformed, or its port cannot be listened on.</exception>
    public TelemetryExports Start(ParseResult parse)
    {
        var metricsUrl = parse.GetValue(_metricsUrl) is { } given ? ParseScrapeUrl(given) : null;
        var (otlpTraces, otlpMetrics, otlpLogs) = (OtlpConfigured("TRACES"), OtlpConfigured("METRICS"), OtlpConfigured("LOGS"));
        if (!otlpTraces && !otlpMetrics && !otlpLogs && metricsUrl is null)
            return new TelemetryExports(null, null, null);

        var resource = ResourceBuilder.CreateEmpty()
            .AddService(ServiceName, serviceVersion: typeof(CliTelemetry).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion)
            .AddTelemetrySdk()
            // Added last, so OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES override the defaults above.
            .AddEnvironmentVariableDetector();

        TracerProvider? traces = null;
        if (otlpTraces)
        {
            traces = Sdk.CreateTracerProviderBuilder()
                .SetResourceBuilder(resource)
                .AddSource(PipelineTelemetry.ActivitySourceName)
                .AddOtlpExporter()
                .Build();
        }

        MeterProvider? metrics = null;
        if (otlpMetrics || metricsUrl is not null)
        {
            var builder = Sdk.CreateMeterProviderBuilder()
                .SetResourceBuilder(resource)
                .AddMeter(PipelineTelemetry.MeterName);
            if (otlpMetrics)
                builder.AddOtlpExporter();
            if (metricsUrl is not null)
            {
                builder.AddPrometheusHttpListener(options =>
                {
                    options.Port = metricsUrl.Port;
                    options.ScrapeEndpointPath = metricsUrl.Path;
                    // The exporter's Host must be a host name; the listener's prefix may be a wildcard, so it is set here.
                    options.ConfigureHttpListener = (_, listener) =>
                    {
                        listener.Prefixes.Clear();
                        listener.Prefixes.Add(metricsUrl.Prefix);
                    };
                });
            }
            try
            {
                metrics = builder.Build();
            }
            catch (InvalidOperationException e) when (metricsUrl is not null)
            {
                traces?.Dispose();
                throw new SettingsException(
                    $"--metrics-url {metricsUrl}: cannot listen there: {Cause(e)}. Choose a free port (another process listens on this one, "
                    + "perhaps a second synchro-pipeline) or an address of this machine.", e);
            }
        }

        return new TelemetryExports(traces, metrics, otlpLogs ? resource : null);
    }

    private static bool OtlpConfigured(string signal) =>
        !string.IsNullOrEmpty(Environment.GetEnvironmentVariable(OtlpEndpointVariable))
        || !string.IsNullOrEmpty(Environment.GetEnvironmentVariable($"OTEL_EXPORTER_OTLP_{signal}_ENDPOINT"));

    /// <summary>
    /// The listener's host, port and path for <paramref name="url"/>: http, a host (<c>+</c> or <c>*</c>: every address),
    /// a port, and the path that serves the metrics (<c>/metrics</c> when none is given).
    /// </summary>
    private static ScrapeEndpoint ParseScrapeUrl(string url)
    {
        const string scheme = "http://";
        var problem = "it must look like http://+:9464/metrics (http, a host name or address or + for every address, a port, a path)";
        if (url.StartsWith(scheme, StringComparison.OrdinalIgnoreCase))
        {
            var rest = url[scheme.Length..];
            var slash = rest.IndexOf('/', StringComparison.Ordinal);
            var authority = slash < 0 ? rest : rest[..slash];
            // The listener's wildcards are no host names: the rest is checked with a stand-in.
            var wildcard = authority.StartsWith("+:", StringComparison.Ordinal) || authority.StartsWith("*:", StringComparison.Ordinal);
            var probe = scheme + (wildcard ? "localhost" + authority[1..] : authority) + (slash < 0 ? "/" : rest[slash..]);
            if (Uri.TryCreate(probe, UriKind.Absolute, out var parsed) && parsed.Query.Length == 0 && parsed.Fragment.Length == 0
                && parsed.UserInfo.Length == 0 && !parsed.IsDefaultPort && parsed.Port > 0)
            {
                var path = parsed.AbsolutePath.TrimEnd('/');
                return new ScrapeEndpoint(wildcard ? "+" : parsed.Host, parsed.Port, path.Length == 0 ? "/" + DefaultScrapePath : path);
            }
            if (Uri.TryCreate(probe, UriKind.Absolute, out parsed) && parsed.IsDefaultPort)
                problem = "it needs an explicit port, as in http://+:9464/metrics";
        }
        else if (url.StartsWith("https://", StringComparison.OrdinalIgnoreCase))
        {
            problem = "the scrape endpoint serves http only (put a proxy in front of it for TLS)";
        }
        throw new SettingsException($"--metrics-url {url} is not a URL to listen on: {problem}.");
    }

    private sealed record ScrapeEndpoint(string Host, int Port, string Path)
    {
        /// <summary>The listener's prefix: the root of the host and port, so that the exporter matches the path itself.</summary>
        public string Prefix => $"http://{Host}:{Port.ToString(CultureInfo.InvariantCulture)}/";

        public override string ToString() => $"http://{Host}:{Port.ToString(CultureInfo.InvariantCulture)}{Path}";
    }

    private static string Cause(Exception error)
    {
        for (var e = error; e is not null; e = e.InnerException)
        {
            if (e is HttpListenerException or SocketException)
                return e.Message;
        }
        return error.InnerException?.Message ?? error.Message;
    }
}
