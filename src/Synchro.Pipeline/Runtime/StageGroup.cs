using Microsoft.Extensions.Logging;
using Synchro.Pipeline.Diagnostics;
using Synchro.Pipeline.Postgres;

namespace Synchro.Pipeline.Runtime;

/// <summary>
/// Runs the stages of one pipeline run and stops them in two steps. A stop (the caller's token) or the first stage to
/// fail cancels <see cref="Stopping"/>: every stage ends at its next safe point — the writer after the item it is
/// writing, the reader once the server ended the stream. Work still in flight <see cref="StopGrace"/> later is given
/// up: <see cref="Aborting"/> cancels it (a batch in flight rolls back). The first real error (not the cancellations
/// it or the stop caused) is the one reported.
/// </summary>
/// <remarks>
/// Only <see cref="Aborting"/> is ever handed to Npgsql. Npgsql cancels a command by sending PostgreSQL a cancel
/// request synchronously inside the token's callback and waiting there for the server to close that connection; with
/// socket completions inline (the CLI), the continuation that ends the cancelled command runs on a socket thread and
/// waits for that callback, which waits for a socket thread: a stop took Npgsql's 15 s cancel-connection timeout about
/// half of the time. Stages that must be interrupted while they wait on the server get there without Npgsql's
/// cancellation (the reader has the server end the stream; see <c>WalSenderCancel</c>).
/// </remarks>
internal sealed partial class StageGroup : IDisposable
{
    /// <summary>How long the stages may take to reach a safe point after a stop before the work in flight is cancelled.</summary>
    /// <remarks>A batch takes milliseconds to a second to write; one still running after this is stuck on the server (a lock, a slow rule).</remarks>
    public static readonly TimeSpan StopGrace = TimeSpan.FromSeconds(5);

    private readonly List<Task> _stages = [];
    private readonly List<Task> _watchers = [];
    private readonly CancellationTokenSource _stopping;
    private readonly CancellationTokenSource _aborting = new();
    private readonly CancellationTokenRegistration _abortAfterGrace;
    private readonly ILogger _logger;
    private readonly TimeSpan _grace;
    private Exception? _firstError;

    /// <param name="stop">The caller's stop.</param>
    /// <param name="logger">The lifecycle logger (says when the grace ran out).</param>
    /// <param name="grace">How long after <see cref="Stopping"/> the work in flight is cancelled; <see cref="StopGrace"/> but in tests.</param>
    public StageGroup(CancellationToken stop, ILogger logger, TimeSpan? grace = null)
    {
        _stopping = CancellationTokenSource.CreateLinkedTokenSource(stop);
        _logger = logger;
        _grace = grace ?? StopGrace;
        _abortAfterGrace = _stopping.Token.Register(static group => ((StageGroup)group!).AbortAfterGrace(), this);
    }

    /// <summary>Cancelled when the run is to end: the caller stopped it, or a stage failed or ended.</summary>
    public CancellationToken Stopping => _stopping.Token;

    /// <summary>Cancelled <see cref="StopGrace"/> after <see cref="Stopping"/> if the run has not ended by then: give up the work in flight.</summary>
    public CancellationToken Aborting => _aborting.Token;

    /// <summary>Starts a stage that needs only <see cref="Stopping"/>.</summary>
    public void Start(Func<CancellationToken, Task> stage) => Start((stopping, _) => stage(stopping));

    /// <summary>Starts a stage given <see cref="Stopping"/> and <see cref="Aborting"/>.</summary>
    public void Start(Func<CancellationToken, CancellationToken, Task> stage) => _stages.Add(RunAsync(stage));

    /// <summary>
    /// Starts a task that runs beside the stages (heartbeats, slot health), given <see cref="Stopping"/> and
    /// <see cref="Aborting"/>: its failure fails the run like a stage's, and it is stopped once the stages have ended
    /// (it never ends the run by itself).
    /// </summary>
    public void StartWatcher(Func<CancellationToken, CancellationToken, Task> watcher) => _watchers.Add(RunAsync(watcher));

    private async Task RunAsync(Func<CancellationToken, CancellationToken, Task> stage)
    {
        try
        {
            await Task.Run(() => stage(_stopping.Token, _aborting.Token)).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            // A cancellation once the run is stopping is the stop's doing, whichever way Npgsql reports it.
            if (!(_stopping.IsCancellationRequested && PostgresErrors.IsCancellation(e)))
                Interlocked.CompareExchange(ref _firstError, e, null);
            await _stopping.CancelAsync().ConfigureAwait(false);
        }
    }

    /// <summary>Waits for every stage, then stops the watchers; throws the first real error, or the cancellation when the run was stopped.</summary>
    public async Task WhenAllAsync()
    {
        await Task.WhenAll(_stages).ConfigureAwait(false);
        var stopped = _stopping.IsCancellationRequested;
        await _stopping.CancelAsync().ConfigureAwait(false);
        await Task.WhenAll(_watchers).ConfigureAwait(false);
        if (_firstError is not null)
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(_firstError);
        if (stopped)
            throw new OperationCanceledException(_stopping.Token);
    }

    private void AbortAfterGrace()
    {
        // The timer fires only if the group is not disposed first, i.e. the run has not ended.
        _aborting.Token.Register(static group => ((StageGroup)group!).LogAborting(), this);
        _aborting.CancelAfter(_grace);
    }

    private void LogAborting() => LogAborting(_logger, _grace.TotalSeconds);

    public void Dispose()
    {
        _abortAfterGrace.Dispose();
        _aborting.Dispose();
        _stopping.Dispose();
    }

    [LoggerMessage(EventId = EventIds.StopGraceExpired, Level = LogLevel.Warning,
        Message = "The run did not reach a safe point within {Seconds} s of the stop: cancelling the work still in flight (a batch being written rolls back "
            + "and is written again at the next start). A batch that slow is stuck on the server: look for locks on the sidecar tables or a slow bucket rule")]
    private static partial void LogAborting(ILogger logger, double seconds);
}
