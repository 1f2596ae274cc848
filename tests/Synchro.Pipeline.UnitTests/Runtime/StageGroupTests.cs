using System.Collections.Concurrent;
using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Npgsql;
using Synchro.Pipeline.Diagnostics;
using Synchro.Pipeline.Runtime;

namespace Synchro.Pipeline.Tests.Runtime;

/// <summary>
/// How a run's stages stop: at a safe point on <see cref="StageGroup.Stopping"/>, the work in flight cancelled on
/// <see cref="StageGroup.Aborting"/> once the grace has run out, and a cancellation — however Npgsql words it — counted
/// as the stop, not as an error, once the run is stopping.
/// </summary>
public sealed class StageGroupTests
{
    // What Npgsql throws when a cancellation breaks off a read of the replication stream's data.
    private static NpgsqlException BrokenOffRead() => new("Exception while reading from stream", new TaskCanceledException());

    [Fact]
    public async Task A_read_broken_off_by_the_stop_is_the_stop_not_an_error()
    {
        using var stop = new CancellationTokenSource();
        using var stages = new StageGroup(stop.Token, new EventLogger());
        stages.Start(async (stopping, _) =>
        {
            await Task.Delay(Timeout.Infinite, stopping).ContinueWith(_ => { }, TaskScheduler.Default);
            throw BrokenOffRead();
        });
        stages.StartWatcher(async (stopping, _) => await Task.Delay(Timeout.Infinite, stopping));

        await stop.CancelAsync();

        await Assert.ThrowsAsync<OperationCanceledException>(stages.WhenAllAsync);
    }

    [Fact]
    public async Task The_same_exception_without_a_stop_is_the_runs_error_and_stops_the_other_stages()
    {
        using var stages = new StageGroup(CancellationToken.None, new EventLogger());
        var otherStopped = false;
        stages.Start(_ => Task.FromException(BrokenOffRead()));
        stages.Start(async (stopping, _) =>
        {
            await Task.Delay(Timeout.Infinite, stopping).ContinueWith(_ => { }, TaskScheduler.Default);
            otherStopped = true;
            stopping.ThrowIfCancellationRequested();
        });

        var error = await Assert.ThrowsAsync<NpgsqlException>(stages.WhenAllAsync);

        Assert.Equal("Exception while reading from stream", error.Message);
        Assert.True(otherStopped);
    }

    [Fact]
    public async Task Work_still_in_flight_when_the_grace_runs_out_is_cancelled_and_said_so()
    {
        var logger = new EventLogger();
        using var stop = new CancellationTokenSource();
        using var stages = new StageGroup(stop.Token, logger, grace: TimeSpan.FromMilliseconds(300));
        var stopping = Stopwatch.StartNew();
        TimeSpan? cancelledAfter = null;
        // A batch that ignores the stop and ends only when its work is cancelled.
        stages.Start(async (_, aborting) =>
        {
            await Task.Delay(Timeout.Infinite, aborting).ContinueWith(_ => { }, TaskScheduler.Default);
            cancelledAfter = stopping.Elapsed;
            aborting.ThrowIfCancellationRequested();
        });

        stopping.Restart();
        await stop.CancelAsync();

        await Assert.ThrowsAsync<OperationCanceledException>(stages.WhenAllAsync);
        Assert.InRange(cancelledAfter!.Value, TimeSpan.FromMilliseconds(250), TimeSpan.FromSeconds(10));
        Assert.Equal([EventIds.StopGraceExpired], logger.Events);
    }

    [Fact]
    public async Task A_run_that_reaches_its_safe_point_in_time_cancels_nothing_in_flight()
    {
        var logger = new EventLogger();
        using var stop = new CancellationTokenSource();
        var aborted = false;
        // A grace a loaded machine's scheduler cannot overrun before the stage sees its stop; waited past once the group ended.
        using (var stages = new StageGroup(stop.Token, logger, grace: TimeSpan.FromSeconds(1)))
        {
            stages.Start(async (stopping, aborting) =>
            {
                using var _ = aborting.Register(() => aborted = true);
                await Task.Delay(Timeout.Infinite, stopping);
            });
            await stop.CancelAsync();
            await Assert.ThrowsAsync<OperationCanceledException>(stages.WhenAllAsync);
        }

        await Task.Delay(1_500);
        Assert.False(aborted);
        Assert.Empty(logger.Events);
    }

    private sealed class EventLogger : ILogger
    {
        private readonly ConcurrentQueue<int> _events = new();

        public IReadOnlyCollection<int> Events => _events;

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            => _events.Enqueue(eventId.Id);
    }
}
