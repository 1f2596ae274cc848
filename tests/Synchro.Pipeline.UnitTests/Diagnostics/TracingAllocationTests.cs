using System.Diagnostics;
using Synchro.Pipeline.Diagnostics;

namespace Synchro.Pipeline.Tests.Diagnostics;

/// <summary>
/// With no listener on the pipeline's activity source, what every batch does for its spans allocates nothing, and makes no
/// span; with one, the spans exist and a failure is recorded on them.
/// </summary>
/// <remarks>No other test of this assembly listens to the source (the integration tests do, in their own process).</remarks>
public sealed class TracingAllocationTests
{
    [Fact]
    public void Starting_the_spans_of_a_batch_without_a_listener_allocates_nothing()
    {
        Assert.False(PipelineTracing.Source.HasListeners());
        var parent = new ActivityContext(ActivityTraceId.CreateRandom(), ActivitySpanId.CreateRandom(), ActivityTraceFlags.Recorded);
        PerBatch(parent);

        var made = 0;
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 1_000; i++)
        {
            if (PerBatch(parent) != default)
                made++;
        }
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(0, made);
        Assert.Equal(0, allocated);
    }

    [Fact]
    public void With_a_listener_the_spans_exist_and_a_failure_sets_status_error_with_the_exception()
    {
        var stopped = new List<Activity>();
        using var listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name == PipelineTelemetry.ActivitySourceName,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = a =>
            {
                lock (stopped)
                    stopped.Add(a);
            },
        };
        ActivitySource.AddActivityListener(listener);
        using var outer = PipelineTracing.StartChild("outer");

        // A root, even inside another span; its child under it.
        using (var write = PipelineTracing.Start(PipelineTracing.Write))
        {
            Assert.NotNull(write);
            Assert.Equal(default, write.ParentSpanId);
            using var commit = PipelineTracing.StartChild(PipelineTracing.Commit);
            Assert.Equal(write.SpanId, commit!.ParentSpanId);
            commit.Failed(new InvalidOperationException("the changelog went away"));
        }
        lock (stopped)
        {
            var commit = Assert.Single(stopped, a => a.OperationName == PipelineTracing.Commit);
            Assert.Equal(ActivityStatusCode.Error, commit.Status);
            Assert.Equal("the changelog went away", commit.StatusDescription);
            Assert.Equal("exception", Assert.Single(commit.Events).Name);
        }
        Assert.Equal(PipelineTelemetry.ActivitySourceName, PipelineTracing.Source.Name);
        Assert.Equal(PipelineTracing.Version, PipelineTracing.Source.Version);
        Assert.NotNull(PipelineTracing.Version);
    }

    /// <summary>What the stages do per batch for their spans: decode (a root with a start time), write under it, assign and commit under the write.</summary>
    private static ActivityContext PerBatch(ActivityContext decode)
    {
        using var root = PipelineTracing.Start(PipelineTracing.Decode, startTime: DateTimeOffset.UtcNow);
        using var write = PipelineTracing.Start(PipelineTracing.Write, decode);
        using var assign = PipelineTracing.StartChild(PipelineTracing.Assign);
        using var commit = PipelineTracing.StartChild(PipelineTracing.Commit);
        commit.Failed(s_error);
        return PipelineTracing.ContextOf(root);
    }

    private static readonly Exception s_error = new InvalidOperationException("not raised");
}
