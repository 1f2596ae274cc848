using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Npgsql.Replication;
using Synchro.Pipeline.Protocol;

namespace Synchro.Pipeline.Runtime;

/// <summary>
/// Takes the writer's receipts, advances the <see cref="CommittedPosition"/>, and tells the server how far the
/// changelog is durable, so it can release WAL. Invariant 2 of docs/architecture.md: the LSN it reports is always a position the writer has
/// committed: the end of a source transaction, or a heartbeat's position once everything before it is committed.
/// </summary>
internal sealed partial class LsnCommitter(ChannelReader<Lsn> committed, CommittedPosition position, ReplicationConnection connection, ILogger logger)
{
    public async Task RunAsync(CancellationToken cancellationToken)
    {
        try
        {
            while (await committed.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
            {
                // The writer may have committed several batches meanwhile: report only the newest.
                var newest = TakeReceipts();
                connection.SetReplicationStatus(newest);
                await connection.SendStatusUpdate(cancellationToken).ConfigureAwait(false);
                LogConfirmed(logger, newest);
            }
        }
        finally
        {
            // Receipts of commits made before the stop still count (the stop-time confirm reads the position).
            TakeReceipts();
        }
    }

    private Lsn TakeReceipts()
    {
        var newest = Lsn.Invalid;
        while (committed.TryRead(out var lsn))
            newest = Lsn.Max(newest, lsn);
        position.Advance(newest);
        return newest;
    }

    [LoggerMessage(EventId = Diagnostics.EventIds.PositionConfirmed, Level = LogLevel.Debug, Message = "Confirmed position {Position} to the server")]
    private static partial void LogConfirmed(ILogger logger, Lsn position);
}
