using System.IO.Pipelines;
using System.Threading.Channels;
using Synchro.Pipeline.Diagnostics;
using Synchro.Pipeline.Protocol;
using Synchro.Pipeline.Protocol.Messages;

namespace Synchro.Pipeline.Pipeline;

/// <summary>
/// The decoder stage: reads WAL frames from the reader's pipe, parses them, and writes batches
/// of registered-table changes to the writer's channel.
/// </summary>
internal sealed class DecoderStage(PipeReader input, ChannelWriter<ChangeBatch> output, PgOutputParser parser, ChangeDecoder decoder, TimeSpan linger, PipelineMetrics metrics)
{
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        Exception? error = null;
        using var frames = new WalFrameReader();
        using var lingerTimer = new Timer(_ => input.CancelPendingRead());
        // Armed when the first whole transaction is waiting, so no batch waits longer than the linger time.
        var lingering = false;
        try
        {
            while (true)
            {
                var read = await input.ReadAsync(cancellationToken).ConfigureAwait(false);
                if (read.IsCanceled)
                {
                    lingering = false;
                    // The linger time passed with no more input: send what is whole.
                    if (decoder.TryCutAtIdle(out var idleBatch))
                        await SendAsync(idleBatch, cancellationToken).ConfigureAwait(false);
                    continue;
                }

                var buffer = read.Buffer;
                try
                {
                    while (frames.TryRead(ref buffer, out var frame))
                    {
                        Parse(frame);
                        while (decoder.TryTakeReady(out var batch))
                            await SendAsync(batch, cancellationToken).ConfigureAwait(false);
                    }
                }
                finally
                {
                    input.AdvanceTo(buffer.Start, buffer.End);
                }

                if (read.IsCompleted)
                {
                    if (!buffer.IsEmpty)
                        throw new PgOutputProtocolException($"the replication stream ended inside a frame ({buffer.Length} bytes left over)", messageKind: 0, offset: 0);
                    if (decoder.TryCutAtIdle(out var lastBatch))
                        await SendAsync(lastBatch, cancellationToken).ConfigureAwait(false);
                    return;
                }

                if (decoder.HasCompleteTransactions && !lingering)
                {
                    lingering = true;
                    lingerTimer.Change(linger, Timeout.InfiniteTimeSpan);
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
            await input.CompleteAsync(error).ConfigureAwait(false);
            output.TryComplete(error);
        }
    }

    private void Parse(WalFrame frame)
    {
        var handler = new Handler(decoder, frame.Payload.Length);
        parser.Parse(frame.Payload, frame.WalStart, ref handler);
        metrics.FrameDecoded(WalFrame.HeaderLength + frame.Payload.Length, frame.WalEnd);
    }

    private ValueTask SendAsync(ChangeBatch batch, CancellationToken cancellationToken)
    {
        metrics.BatchDecoded(batch);
        return output.WriteAsync(batch, cancellationToken);
    }

    /// <summary>Forwards the messages the decoder needs; a struct so the parser's calls are direct. Internal for the benchmarks and allocation tests.</summary>
    internal readonly struct Handler(ChangeDecoder decoder, int messageBytes) : IPgOutputHandler
    {
        public void OnBegin(in BeginMessage message) => decoder.OnBegin(message);

        public void OnCommit(in CommitMessage message) => decoder.OnCommit(message);

        public void OnRelation(in RelationMessage message) => decoder.OnRelation(message);

        public void OnInsert(in InsertMessage message) => decoder.OnInsert(message, messageBytes);

        public void OnUpdate(in UpdateMessage message) => decoder.OnUpdate(message, messageBytes);

        public void OnDelete(in DeleteMessage message) => decoder.OnDelete(message, messageBytes);

        public void OnTruncate(in TruncateMessage message) => decoder.OnTruncate(message);

        public void OnOrigin(in OriginMessage message) => decoder.OnOrigin(message);

        public void OnType(in TypeMessage message)
        {
        }

        public void OnMessage(in LogicalDecodingMessage message) => decoder.OnMessage(message);

        // Streaming and two-phase are not requested, so the parser rejects these before they get here.
        public void OnStreamStart(in StreamStartMessage message) => throw Unrequested();

        public void OnStreamStop() => throw Unrequested();

        public void OnStreamCommit(in CommitMessage message) => throw Unrequested();

        public void OnStreamAbort(in StreamAbortMessage message) => throw Unrequested();

        public void OnBeginPrepare(in PrepareMessage message) => throw Unrequested();

        public void OnPrepare(in PrepareMessage message) => throw Unrequested();

        public void OnCommitPrepared(in CommitPreparedMessage message) => throw Unrequested();

        public void OnRollbackPrepared(in RollbackPreparedMessage message) => throw Unrequested();

        public void OnStreamPrepare(in PrepareMessage message) => throw Unrequested();

        private static InvalidOperationException Unrequested() => new("The parser passed a message kind the pipeline did not request.");
    }
}
