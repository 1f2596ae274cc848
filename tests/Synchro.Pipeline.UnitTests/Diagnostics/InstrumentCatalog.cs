using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using Microsoft.Extensions.DependencyInjection;
using Synchro.Pipeline.Diagnostics;
using Synchro.Pipeline.Protocol;

namespace Synchro.Pipeline.Tests.Diagnostics;

/// <summary>What a Prometheus exporter makes of an instrument: a counter, a gauge or a histogram.</summary>
internal enum InstrumentKind
{
    Counter,
    Gauge,
    Histogram,
}

/// <summary>One instrument of the <c>Synchro.Pipeline</c> meter as the code creates it, with the tag keys its measurements carried.</summary>
internal sealed record InstrumentInfo(string Name, string? Unit, InstrumentKind Kind, IReadOnlySet<string> TagKeys)
{
    public string PrometheusName => PrometheusNames.Of(Name, Unit, Kind);
}

/// <summary>
/// Every instrument <see cref="PipelineMetrics"/> and its <see cref="CompactionMetrics"/> create, read from a
/// <see cref="MeterListener"/>: each is driven once so that its measurements show the tags it carries.
/// </summary>
internal static class InstrumentCatalog
{
    public static IReadOnlyList<InstrumentInfo> Read()
    {
        using var services = new ServiceCollection().AddMetrics().BuildServiceProvider();
        var factory = services.GetRequiredService<IMeterFactory>();
        var published = new ConcurrentDictionary<string, Instrument>();
        var tags = new ConcurrentDictionary<string, ConcurrentDictionary<string, bool>>();

        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            // Only this factory's meters: other tests' pipelines publish on the same meter name.
            if (!ReferenceEquals(instrument.Meter.Scope, factory))
                return;
            published[instrument.Name] = instrument;
            l.EnableMeasurementEvents(instrument);
        };
        void Seen(Instrument instrument, ReadOnlySpan<KeyValuePair<string, object?>> measured)
        {
            var keys = tags.GetOrAdd(instrument.Name, _ => new());
            foreach (var tag in measured)
                keys[tag.Key] = true;
        }
        listener.SetMeasurementEventCallback<int>((i, _, t, _) => Seen(i, t));
        listener.SetMeasurementEventCallback<long>((i, _, t, _) => Seen(i, t));
        listener.SetMeasurementEventCallback<double>((i, _, t, _) => Seen(i, t));
        listener.Start();

        using var metrics = Drive(factory);
        listener.RecordObservableInstruments();

        return published.Values
            .Select(i => new InstrumentInfo(i.Name, i.Unit, KindOf(i), tags.TryGetValue(i.Name, out var keys) ? keys.Keys.ToHashSet(StringComparer.Ordinal) : []))
            .OrderBy(i => i.Name, StringComparer.Ordinal)
            .ToList();
    }

    /// <summary>Pipeline metrics on <paramref name="factory"/>'s meter with a measurement in every instrument, observable ones included.</summary>
    public static PipelineMetrics Drive(IMeterFactory factory)
    {
        var metrics = new PipelineMetrics(() => new Lsn(0x1000), "catalog", factory);
        metrics.RunStarted(new StageQueues(() => 1, () => 0, () => default));
        metrics.SlotHealth(new SlotHealthReading("lost", 1 << 20, "wal_removed", DateTimeOffset.UtcNow, Failover: true, Synced: false));
        metrics.BatchCommitted(changes: 3, transactions: 1, [DateTime.UtcNow], Stopwatch.GetTimestamp());
        metrics.Compaction.Removed(superseded: 2, deletes: 1);
        metrics.Compaction.RunEnded("complete", TimeSpan.FromSeconds(1));
        return metrics;
    }

    private static InstrumentKind KindOf(Instrument instrument)
    {
        var type = instrument.GetType().GetGenericTypeDefinition();
        if (type == typeof(Counter<>) || type == typeof(ObservableCounter<>))
            return InstrumentKind.Counter;
        if (type == typeof(Histogram<>))
            return InstrumentKind.Histogram;
        // Gauges, and up-down counters, which are not monotonic: Prometheus gauges.
        if (type == typeof(ObservableGauge<>) || type == typeof(Gauge<>) || type == typeof(UpDownCounter<>) || type == typeof(ObservableUpDownCounter<>))
            return InstrumentKind.Gauge;
        throw new InvalidOperationException($"{instrument.Name} is a {type.Name}, which the Prometheus naming here does not know.");
    }
}
