using System.Collections.Concurrent;
using System.Diagnostics;
using Synchro.Pipeline.Diagnostics;

namespace Synchro.Pipeline.Tests.Diagnostics;

/// <summary>Every span of the pipeline's activity source (and of <see cref="TestSource"/>) stopped while it listens, all data recorded.</summary>
internal sealed class ActivityRecorder : IDisposable
{
    public static readonly ActivitySource TestSource = new("Synchro.Pipeline.Tests");

    private readonly ActivityListener _listener;
    private readonly ConcurrentQueue<Activity> _stopped = new();

    public ActivityRecorder()
    {
        _listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name is PipelineTelemetry.ActivitySourceName or "Synchro.Pipeline.Tests",
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = _stopped.Enqueue,
        };
        ActivitySource.AddActivityListener(_listener);
    }

    /// <summary>The stopped spans named <paramref name="name"/> whose <c>synchro.slot</c> is <paramref name="slot"/>.</summary>
    public List<Activity> Of(string name, string slot)
        => [.. _stopped.Where(a => a.OperationName == name && a.GetTagItem("synchro.slot") as string == slot)];

    /// <summary>The stopped spans named <paramref name="name"/> of trace <paramref name="trace"/>.</summary>
    public List<Activity> InTrace(string name, ActivityTraceId trace) => [.. _stopped.Where(a => a.OperationName == name && a.TraceId == trace)];

    public void Dispose() => _listener.Dispose();
}
