using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Npgsql.Replication;
using Synchro.Pipeline.Protocol;

namespace Synchro.Pipeline.Runtime;

/// <summary>
/// Tells the server how far the changelog is durable, so it can release WAL. Invariant 2: the LSN
/// it reports is always the end of a source transaction the writer has committed, or a heartbeat's
/// position once everything before it is committed.
/// </summary>
/// <remarks>
/// Heartbeats (<see cref="HeartbeatPrefix"/>) are written by <see cref="HeartbeatEmitter"/>; the decoder turns
/// one into an empty batch, so an idle slot (or one that only sees WAL of unpublished tables or other
/// databases) still advances.
/// </remarks>
internal sealed partial class LsnCommitter(ChannelReader<Lsn> committed, ReplicationConnection connection, ILogger logger)
{
    public const string HeartbeatPrefix = "synchro.heartbeat";

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        while (await committed.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
        {
            // The writer may have committed several batches meanwhile: report only the newest.
            var newest = Lsn.Invalid;
            while (committed.TryRead(out var lsn))
                newest = Lsn.Max(newest, lsn);
            connection.SetReplicationStatus(newest);
            await connection.SendStatusUpdate(cancellationToken).ConfigureAwait(false);
            LogConfirmed(logger, newest);
        }
    }

    [LoggerMessage(EventId = Diagnostics.EventIds.PositionConfirmed, Level = LogLevel.Debug, Message = "Confirmed position {Position} to the server")]
    private static partial void LogConfirmed(ILogger logger, Lsn position);
}
