using System.IO.Pipelines;
using Npgsql.Replication;
using Npgsql.Replication.Internal;
using Synchro.Pipeline.Diagnostics;
using Synchro.Pipeline.Protocol;

namespace Synchro.Pipeline.Replication;

/// <summary>
/// The raw-copy reader: streams the slot's XLogData payloads and copies each, with a
/// <see cref="WalFrame"/> header, into the pipe the decoder reads.
/// </summary>
/// <remarks>
/// The pipe's pause threshold is the WAL memory budget: when the decoder falls behind, flushes wait,
/// the socket is not read, and the server's sender blocks — backpressure all the way to the server.
/// </remarks>
internal sealed class ReaderStage(LogicalReplicationConnection connection, string slotName, Lsn start, IReadOnlyList<KeyValuePair<string, string?>> pluginOptions, PipeWriter output, PipelineMetrics metrics)
{
    // Flush at least this often inside a long transaction so the decoder keeps working.
    private const int FlushEveryBytes = 64 * 1024;

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        Exception? error = null;
        try
        {
            var slot = new PgOutputSlot(slotName);
            var messages = connection.StartLogicalReplication(slot, cancellationToken, start.IsValid ? start : null, pluginOptions, bypassingStream: true);
            var unflushed = 0;
            await foreach (var message in messages.ConfigureAwait(false))
            {
                var length = checked((int)message.Data.Length);
                var memory = output.GetMemory(WalFrame.HeaderLength + length);
                WalFrame.WriteHeader(memory.Span, length, message.WalStart, message.WalEnd);
                await message.Data.ReadExactlyAsync(memory.Slice(WalFrame.HeaderLength, length), cancellationToken).ConfigureAwait(false);
                var boundary = length > 0 && IsTransactionBoundary(memory.Span[WalFrame.HeaderLength]);
                output.Advance(WalFrame.HeaderLength + length);
                unflushed += WalFrame.HeaderLength + length;

                if (boundary || unflushed >= FlushEveryBytes)
                {
                    metrics.Received(unflushed);
                    unflushed = 0;
                    var flush = await output.FlushAsync(cancellationToken).ConfigureAwait(false);
                    if (flush.IsCompleted)
                        return;
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
            await output.CompleteAsync(error).ConfigureAwait(false);
        }
    }

    private sealed class PgOutputSlot(string name) : LogicalReplicationSlot("pgoutput", new ReplicationSlotOptions(name));

    // Commit ends a transaction; 'M' may be a non-transactional message outside any.
    private static bool IsTransactionBoundary(byte kind) => kind is (byte)'C' or (byte)'M';
}
