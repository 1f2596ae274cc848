namespace Synchro.Pipeline.Diagnostics;

/// <summary>
/// The names under which the pipeline publishes its telemetry, for an OpenTelemetry setup:
/// <c>.AddSource(PipelineTelemetry.ActivitySourceName)</c> and <c>.AddMeter(PipelineTelemetry.MeterName)</c>.
/// </summary>
/// <remarks>
/// Spans are made per batch (decode, assign, write, commit, confirm), per initial-snapshot chunk and per replay chunk,
/// never per change; with no listener attached none is created. The spans, their tags and links, and the instruments
/// are listed in docs/operations.md (Traces, Metrics).
/// </remarks>
public static class PipelineTelemetry
{
    /// <summary>The <see cref="System.Diagnostics.ActivitySource"/> of the pipeline's spans: <c>Synchro.Pipeline</c>.</summary>
    public const string ActivitySourceName = "Synchro.Pipeline";

    /// <summary>The <see cref="System.Diagnostics.Metrics.Meter"/> of the pipeline's instruments: <c>Synchro.Pipeline</c>.</summary>
    public const string MeterName = "Synchro.Pipeline";
}
