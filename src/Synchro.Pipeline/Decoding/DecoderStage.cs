using System.Diagnostics;
using System.IO.Pipelines;
using System.Threading.Channels;
using Synchro.Pipeline.Diagnostics;
using Synchro.Pipeline.Protocol;
using Synchro.Pipeline.Decoding.Items;
using Synchro.Pipeline.Protocol.Messages;

namespace Synchro.Pipeline.Decoding;

/// <summary>
/// The decoder stage: reads WAL frames from the reader's pipe, parses them, and writes the items the
/// <see cref="ChangeDecoder"/> makes of them (batches of registered-table changes and the rest) to the writer's channel.
/// </summary>
internal sealed class DecoderStage(PipeReader input, ChannelWriter<DecodedItem> output, PgOutputParser parser, ChangeDecoder decoder, TimeSpan linger, PipelineMetrics metrics)
{
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        Exception? error = null;
        // Each batch's trace starts at its decode, never under the span that started the pipeline.
        Activity.Current = null;
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
                    decoder.CutAtIdle();
                    await SendReadyAsync(cancellationToken).ConfigureAwait(false);
                    continue;
                }

                var buffer = read.Buffer;
                try
                {
                    while (frames.TryRead(ref buffer, out var frame))
                    {
                        Parse(frame);
                        if (decoder.HasUnresolvedRelations)
                            await decoder.ResolveRelationsAsync(cancellationToken).ConfigureAwait(false);
                        await SendReadyAsync(cancellationToken).ConfigureAwait(false);
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
                    decoder.CutAtIdle();
                    await SendReadyAsync(cancellationToken).ConfigureAwait(false);
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

    private async ValueTask SendReadyAsync(CancellationToken cancellationToken)
    {
        while (decoder.TryTakeReady(out var item))
        {
            if (item is ChangeBatch batch)
            {
                metrics.BatchDecoded(batch.Count);
                Traced(batch);
            }
            await output.WriteAsync(item, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// The batch's decode span, from its first change to now (it is handed on), as the root of its trace; its context goes
    /// with the batch for the writer's spans. Nothing is made without a listener.
    /// </summary>
    private void Traced(ChangeBatch batch)
    {
        if (!PipelineTracing.Source.HasListeners())
            return;
        var now = DateTimeOffset.UtcNow;
        var started = batch.DecodeStarted == 0 ? now : now - Stopwatch.GetElapsedTime(batch.DecodeStarted);
        using var activity = PipelineTracing.Start(PipelineTracing.Decode, startTime: started);
        if (activity is null)
            return;
        batch.Trace = activity.Context;
        if (activity.IsAllDataRequested)
            batch.TagSpan(activity, metrics.Slot);
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

        public void OnStreamStart(in StreamStartMessage message) => decoder.OnStreamStart(message);

        public void OnStreamStop() => decoder.OnStreamStop();

        public void OnStreamCommit(in CommitMessage message) => decoder.OnStreamCommit(message);

        public void OnStreamAbort(in StreamAbortMessage message) => decoder.OnStreamAbort(message);

        public void OnBeginPrepare(in PrepareMessage message) => decoder.OnBeginPrepare(message);

        public void OnPrepare(in PrepareMessage message) => decoder.OnPrepare(message);

        public void OnCommitPrepared(in CommitPreparedMessage message) => decoder.OnCommitPrepared(message);

        public void OnRollbackPrepared(in RollbackPreparedMessage message) => decoder.OnRollbackPrepared(message);

        public void OnStreamPrepare(in PrepareMessage message) => decoder.OnStreamPrepare(message);
    }
}
