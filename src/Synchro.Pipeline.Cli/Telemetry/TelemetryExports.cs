using Microsoft.Extensions.Logging;
using OpenTelemetry.Logs;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace Synchro.Pipeline.Cli.Telemetry;

/// <summary>The running exports of a <c>run</c>: disposing flushes what is buffered and stops the scrape endpoint.</summary>
internal sealed class TelemetryExports(TracerProvider? traces, MeterProvider? metrics, ResourceBuilder? logs) : IDisposable
{
    /// <summary>Adds the OTLP log exporter to a logging builder when an endpoint is configured for logs; otherwise leaves it as it is.</summary>
    public void AddLogging(ILoggingBuilder builder)
    {
        if (logs is null)
            return;
        builder.AddOpenTelemetry(options =>
        {
            options.SetResourceBuilder(logs);
            options.IncludeFormattedMessage = true;
            options.AddOtlpExporter();
        });
    }

    public void Dispose()
    {
        traces?.Dispose();
        metrics?.Dispose();
    }
}
