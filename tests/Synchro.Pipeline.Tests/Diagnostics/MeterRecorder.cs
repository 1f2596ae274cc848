using System.Collections.Concurrent;
using System.Diagnostics.Metrics;

namespace Synchro.Pipeline.Tests.Diagnostics;

/// <summary>Measurements of the meters one factory created, so other tests' pipelines on the same meter name are not counted.</summary>
internal sealed class MeterRecorder : IDisposable
{
    private readonly MeterListener _listener = new();
    private readonly ConcurrentDictionary<string, ConcurrentQueue<(double Value, string? Tag)>> _measurements = new();
    private readonly ConcurrentBag<string> _published = [];

    public MeterRecorder(IMeterFactory scope)
    {
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (!ReferenceEquals(instrument.Meter.Scope, scope))
                return;
            _published.Add(instrument.Meter.Name + "/" + instrument.Name);
            listener.EnableMeasurementEvents(instrument);
        };
        _listener.SetMeasurementEventCallback<long>((i, v, tags, _) => Add(i, v, tags));
        _listener.SetMeasurementEventCallback<int>((i, v, tags, _) => Add(i, v, tags));
        _listener.SetMeasurementEventCallback<double>((i, v, tags, _) => Add(i, v, tags));
        _listener.Start();
    }

    /// <summary>"meter/instrument" of every instrument published by the factory's meters.</summary>
    public IReadOnlyCollection<string> Published => _published;

    public void RecordObservableInstruments() => _listener.RecordObservableInstruments();

    public double Last(string name) => All(name) is { Count: > 0 } all ? all[^1] : throw new InvalidOperationException($"{name} was never measured.");

    public List<double> All(string name) => _measurements.TryGetValue(name, out var queue) ? queue.Select(m => m.Value).ToList() : [];

    /// <summary>The distinct values of the first tag of <paramref name="name"/>'s measurements.</summary>
    public List<string?> Tags(string name) => _measurements.TryGetValue(name, out var queue) ? queue.Select(m => m.Tag).Distinct().ToList() : [];

    private void Add(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        => _measurements.GetOrAdd(instrument.Name, _ => new()).Enqueue((value, tags.Length > 0 ? tags[0].Value as string : null));

    public void Dispose() => _listener.Dispose();
}
