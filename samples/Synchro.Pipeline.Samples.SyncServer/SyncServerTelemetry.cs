using OpenTelemetry;
using OpenTelemetry.Resources;
using Synchro.Pipeline.Diagnostics;

namespace Synchro.Pipeline.Samples.SyncServer;

/// <summary>
/// OpenTelemetry for the sync server: the pipeline's spans and instruments and the application's logs, exported over OTLP to
/// <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> when it is set (the other <c>OTEL_*</c> settings apply as usual).
/// </summary>
public static class SyncServerTelemetry
{
    /// <summary>The <c>service.name</c> unless <c>OTEL_SERVICE_NAME</c> says otherwise.</summary>
    public const string ServiceName = "synchro-sync-server";

    /// <summary>The configuration key (an environment variable) naming the OTLP endpoint; without it nothing is exported.</summary>
    public const string EndpointKey = "OTEL_EXPORTER_OTLP_ENDPOINT";

    /// <summary>Adds tracing (<see cref="PipelineTelemetry.ActivitySourceName"/>), metrics (<see cref="PipelineTelemetry.MeterName"/>) and logging, and the OTLP exporter for all three.</summary>
    public static WebApplicationBuilder AddSyncServerTelemetry(this WebApplicationBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var telemetry = builder.Services.AddOpenTelemetry()
            .ConfigureResource(resource => resource.AddService(ServiceName))
            .WithTracing(tracing => tracing.AddSource(PipelineTelemetry.ActivitySourceName))
            .WithMetrics(metrics => metrics.AddMeter(PipelineTelemetry.MeterName))
            .WithLogging();
        // Without an endpoint the exporter would send to localhost:4317 and log every failure: off unless asked for.
        if (!string.IsNullOrEmpty(builder.Configuration[EndpointKey]))
            telemetry.UseOtlpExporter();
        return builder;
    }
}
