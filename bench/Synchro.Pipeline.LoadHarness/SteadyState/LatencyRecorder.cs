using System.Diagnostics.Metrics;
using Synchro.Pipeline.Diagnostics;

namespace Synchro.Pipeline.LoadHarness.SteadyState;

/// <summary>
/// Collects every value of the pipeline's <c>synchro.pipeline.changelog.latency</c> histogram (seconds
/// from a source commit to the commit of its changelog rows) recorded in this process while it listens.
/// </summary>
internal sealed class LatencyRecorder : IDisposable
{
    public const string InstrumentName = "synchro.pipeline.changelog.latency";

    private readonly MeterListener _listener = new();
    private readonly List<double> _seconds = [];

    public LatencyRecorder()
    {
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == PipelineMetrics.MeterName && instrument.Name == InstrumentName)
                listener.EnableMeasurementEvents(instrument);
        };
        _listener.SetMeasurementEventCallback<double>((_, value, _, _) =>
        {
            lock (_seconds)
                _seconds.Add(value);
        });
        _listener.Start();
    }

    public double[] Snapshot()
    {
        lock (_seconds)
            return [.. _seconds];
    }

    public void Dispose() => _listener.Dispose();
}
