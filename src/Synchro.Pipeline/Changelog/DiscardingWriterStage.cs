using System.Diagnostics;
using System.Threading.Channels;
using Synchro.Pipeline.Diagnostics;
using Synchro.Pipeline.Protocol;
using Synchro.Pipeline.Decoding;

namespace Synchro.Pipeline.Changelog;

/// <summary>
/// Stands in for <see cref="WriterStage"/> when <see cref="WalPipelineOptions.DiscardWrites"/> is set (load
/// harness only): drops each batch and hands its receipt straight to the committer, so a run measures the
/// read and decode path alone.
/// </summary>
/// <remarks>Invariant: receipts still name only the ends of whole source transactions, as the real writer's do.</remarks>
internal sealed class DiscardingWriterStage(ChannelReader<ChangeBatch> input, ChannelWriter<Lsn> committed, PipelineMetrics metrics)
{
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        Exception? error = null;
        try
        {
            var changesInTransaction = 0;
            var started = 0L;
            await foreach (var batch in input.ReadAllAsync(cancellationToken).ConfigureAwait(false))
            {
                // As the real writer: every batch taken is released exactly once, after its last use.
                try
                {
                    if (batch.Failure is { } failure)
                        throw failure;
                    metrics.Writing(batch);
                    if (changesInTransaction == 0)
                        started = Stopwatch.GetTimestamp();
                    changesInTransaction += batch.Count;
                    if (!batch.EndsTransaction)
                        continue;
                    metrics.BatchCommitted(changesInTransaction, batch, started);
                    changesInTransaction = 0;
                    await committed.WriteAsync(batch.EndLsn, cancellationToken).ConfigureAwait(false);
                }
                finally
                {
                    batch.Release();
                }
            }
        }
        catch (Exception e)
        {
            error = e;
            throw;
        }
        finally
        {
            committed.TryComplete(error);
        }
    }
}
