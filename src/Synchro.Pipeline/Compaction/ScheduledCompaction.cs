using Microsoft.Extensions.Logging;

namespace Synchro.Pipeline.Compaction;

/// <summary>
/// Compaction on a schedule beside the running pipeline's stages (a watcher of its stage group): a run an interval after
/// the last one ended. A run that fails is logged by the compactor and does not end the pipeline; the stop ends a run
/// between chunks, and the stop's grace cancels the chunk in flight.
/// </summary>
internal sealed class ScheduledCompaction(ChangelogCompactor compactor, TimeSpan interval, ILogger logger)
{
    /// <summary>Runs until <paramref name="stopping"/>; <paramref name="aborting"/> cancels a statement in flight.</summary>
    public async Task RunAsync(CancellationToken stopping, CancellationToken aborting)
    {
        while (true)
        {
            await Task.Delay(interval, stopping).ConfigureAwait(false);
            try
            {
                await compactor.CompactAsync(stopping, aborting).ConfigureAwait(false);
            }
            catch (Exception e) when (!stopping.IsCancellationRequested && e is not OutOfMemoryException)
            {
                // Logged by the compactor (event 7053) with what to do; the changelog is correct, the next run goes on.
                logger.LogDebug(e, "Scheduled compaction failed; next run in {Interval}", interval);
            }
        }
    }
}
