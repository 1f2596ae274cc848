namespace Synchro.Pipeline.Runtime;

/// <summary>
/// Runs the stages of one pipeline run: the first stage to fail cancels the others, and its error
/// (not the cancellations it caused) is the one reported.
/// </summary>
internal sealed class StageGroup(CancellationTokenSource run)
{
    private readonly List<Task> _stages = [];
    private readonly List<Task> _watchers = [];
    private readonly CancellationTokenSource _stagesEnded = new();
    private Exception? _firstError;

    public void Start(Func<CancellationToken, Task> stage) => _stages.Add(RunAsync(stage));

    private async Task RunAsync(Func<CancellationToken, Task> stage)
    {
        try
        {
            await Task.Run(() => stage(run.Token)).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            if (e is not OperationCanceledException || !run.IsCancellationRequested)
                Interlocked.CompareExchange(ref _firstError, e, null);
            await run.CancelAsync().ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Starts a task that runs beside the stages (heartbeats, slot health): its failure fails the run like a stage's,
    /// and it is cancelled once the stages have ended (it never ends the run by itself).
    /// </summary>
    public void StartWatcher(Func<CancellationToken, Task> watcher)
    {
        var token = CancellationTokenSource.CreateLinkedTokenSource(run.Token, _stagesEnded.Token);
        _watchers.Add(RunWatcherAsync(watcher, token));
    }

    private async Task RunWatcherAsync(Func<CancellationToken, Task> watcher, CancellationTokenSource token)
    {
        using (token)
        {
            try
            {
                await Task.Run(() => watcher(token.Token)).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (token.IsCancellationRequested)
            {
            }
            catch (Exception e)
            {
                Interlocked.CompareExchange(ref _firstError, e, null);
                await run.CancelAsync().ConfigureAwait(false);
            }
        }
    }

    /// <summary>Waits for every stage; throws the first real error, or the cancellation when there was none.</summary>
    public async Task WhenAllAsync()
    {
        await Task.WhenAll(_stages).ConfigureAwait(false);
        await _stagesEnded.CancelAsync().ConfigureAwait(false);
        await Task.WhenAll(_watchers).ConfigureAwait(false);
        _stagesEnded.Dispose();
        if (_firstError is not null)
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(_firstError);
        run.Token.ThrowIfCancellationRequested();
    }
}
