using System.Diagnostics;
using System.Threading.Channels;
using Synchro.Pipeline.Decoding;
using Synchro.Pipeline.Decoding.Items;
using Synchro.Pipeline.Diagnostics;
using Synchro.Pipeline.Protocol;

namespace Synchro.Pipeline.Changelog;

/// <summary>
/// Stands in for <see cref="WriterStage"/> when <see cref="WalPipelineOptions.DiscardWrites"/> is set (load
/// harness only): drops each item and hands the positions straight to the committer, so a run measures the
/// read and decode path alone.
/// </summary>
/// <remarks>Invariant: receipts still name only the positions the real writer would commit.</remarks>
internal sealed class DiscardingWriterStage(ChannelReader<DecodedItem> input, ChannelWriter<CommitReceipt> committed, PipelineMetrics metrics)
{
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        Exception? error = null;
        try
        {
            var changesInTransaction = 0;
            var started = 0L;
            await foreach (var item in input.ReadAllAsync(cancellationToken).ConfigureAwait(false))
            {
                if (changesInTransaction == 0)
                    started = Stopwatch.GetTimestamp();
                var (position, transactions, commitTimes) = (Lsn.Invalid, 0, (IReadOnlyList<DateTime>)[]);
                var release = item switch
                {
                    ChangeBatch batch => batch,
                    SkippedChanges skipped => skipped.Changes,
                    _ => null,
                };
                switch (item)
                {
                    case ChangeBatch batch:
                        metrics.Writing(batch.FirstCommitTime);
                        changesInTransaction += batch.Count;
                        if (batch.EndsTransaction)
                            (position, transactions, commitTimes) = (batch.EndLsn, batch.Transactions, batch.CommitTimes);
                        break;
                    case SkippedChanges skipped:
                        position = skipped.EndLsn;
                        break;
                    case PreparedStep step:
                        position = step.EndLsn;
                        break;
                    case Heartbeat heartbeat:
                        position = heartbeat.Position;
                        break;
                    case DecoderFailure failure:
                        throw failure.Error;
                }
                if (position.IsValid)
                {
                    metrics.BatchCommitted(changesInTransaction, transactions, commitTimes, started);
                    changesInTransaction = 0;
                }
                // As the real writer: every batch taken is released exactly once, after its last use (its commit times above).
                release?.Release();
                if (position.IsValid)
                    await committed.WriteAsync(new CommitReceipt(position, default), cancellationToken).ConfigureAwait(false);
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
