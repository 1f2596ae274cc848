using System.Diagnostics;
using System.Globalization;

namespace Synchro.Pipeline.Cli.Demo;

/// <summary>Formats the pipeline's status as one progress line; the rate is over the time since the previous line.</summary>
internal sealed class StatusLine
{
    private readonly long _startTimestamp;
    private long _previousTimestamp;
    private long _previousChanges;

    /// <summary>Starts the clock; <paramref name="baseline"/> is the status the first rate is measured from.</summary>
    public StatusLine(WalPipelineStatus baseline)
    {
        _startTimestamp = _previousTimestamp = Stopwatch.GetTimestamp();
        _previousChanges = baseline.ChangesCommitted;
    }

    public string Format(string phase, WalPipelineStatus status)
    {
        var now = Stopwatch.GetTimestamp();
        var seconds = Stopwatch.GetElapsedTime(_previousTimestamp, now).TotalSeconds;
        var rate = seconds > 0 ? (status.ChangesCommitted - _previousChanges) / seconds : 0;
        _previousTimestamp = now;
        _previousChanges = status.ChangesCommitted;

        return string.Create(
            CultureInfo.InvariantCulture,
            $"{Stopwatch.GetElapsedTime(_startTimestamp, now).TotalSeconds,4:F0}s {phase,-11} {rate,7:N0} changes/s | {status.ChangesCommitted:N0} changes, "
            + $"{status.ChangelogRows:N0} changelog rows, {status.Batches:N0} batches | lag {Bytes(status.LagBytes)}, {status.Lag.TotalSeconds:F2} s | "
            + $"memory {Bytes(Environment.WorkingSet)} (GC heap {Bytes(GC.GetTotalMemory(forceFullCollection: false))})");
    }

    public static string Bytes(long bytes) => bytes switch
    {
        < 1024 => string.Create(CultureInfo.InvariantCulture, $"{bytes} B"),
        < 1024 * 1024 => string.Create(CultureInfo.InvariantCulture, $"{bytes / 1024.0:F1} KiB"),
        _ => string.Create(CultureInfo.InvariantCulture, $"{bytes / (1024.0 * 1024):F1} MiB"),
    };
}
