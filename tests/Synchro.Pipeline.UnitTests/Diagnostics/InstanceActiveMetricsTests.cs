using System.Diagnostics.Metrics;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using Synchro.Pipeline.Diagnostics;
using Synchro.Pipeline.Protocol;

namespace Synchro.Pipeline.Tests.Diagnostics;

/// <summary>The instance role (WaitForLock) in the status and the <c>synchro.pipeline.instance.active</c> gauge.</summary>
public sealed class InstanceActiveMetricsTests
{
    private const string Holder = "the slot lock of another pipeline (backend pid 42)";

    [Fact]
    public void Waiting_reports_the_holder_and_0_holding_the_locks_1_and_a_stop_0()
    {
        using var services = new ServiceCollection().AddMetrics().BuildServiceProvider();
        var meters = services.GetRequiredService<IMeterFactory>();
        using var metrics = new PipelineMetrics(() => Lsn.Invalid, "slot_a", meters);
        using var gauge = new GaugeReader(meters, "synchro.pipeline.instance.active");

        Assert.Equal(0, gauge.Read());
        metrics.WaitingForLock(Holder);
        Assert.Equal((WalPipelineState.WaitingForLock, Holder), (metrics.Snapshot().State, metrics.Snapshot().LockHolder));
        Assert.Equal(0, gauge.Read());

        metrics.LocksHeld();
        Assert.Equal(WalPipelineState.Starting, metrics.Snapshot().State);
        Assert.Null(metrics.Snapshot().LockHolder);
        Assert.Equal(1, gauge.Read());

        // Holding the locks again in a reconnect leaves the state alone.
        metrics.SetState(WalPipelineState.Reconnecting);
        metrics.LocksHeld();
        Assert.Equal(WalPipelineState.Reconnecting, metrics.Snapshot().State);

        metrics.LocksReleased();
        Assert.Equal(0, gauge.Read());
    }

    [Fact]
    public void Waiting_ends_a_retry_episode_so_a_takeover_hours_later_is_not_reported_as_retrying_since_then()
    {
        using var metrics = new PipelineMetrics(() => Lsn.Invalid, "slot_a");
        metrics.Retrying(WalPipelineState.Starting, new NpgsqlException("Failed to connect"), attempt: 1, DateTimeOffset.UtcNow.AddHours(-2));
        Assert.Equal(1, metrics.Snapshot().RetryAttempts);

        metrics.WaitingForLock(Holder);

        Assert.Equal(0, metrics.Snapshot().RetryAttempts);
        Assert.Null(metrics.Snapshot().RetryingSince);
    }

    /// <summary>One observable instrument of the meters one factory created.</summary>
    private sealed class GaugeReader : IDisposable
    {
        private readonly MeterListener _listener = new();
        private long _last = -1;

        public GaugeReader(IMeterFactory scope, string name)
        {
            _listener.InstrumentPublished = (instrument, listener) =>
            {
                if (ReferenceEquals(instrument.Meter.Scope, scope) && instrument.Name == name)
                    listener.EnableMeasurementEvents(instrument);
            };
            _listener.SetMeasurementEventCallback<int>((_, value, _, _) => _last = value);
            _listener.Start();
        }

        public long Read()
        {
            _last = -1;
            _listener.RecordObservableInstruments();
            return _last;
        }

        public void Dispose() => _listener.Dispose();
    }
}
