using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Npgsql;
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
    /// <summary>Takes receipts until the writer completes them (it ends after the batch it is writing when the run stops).</summary>
    /// <param name="stopping">The run is ending: the stream is closing, so positions are only taken, and the stop-time confirm reports the last.</param>
    /// <param name="aborting">Gives up waiting for the writer (the stop's grace ran out).</param>
    public async Task RunAsync(CancellationToken stopping, CancellationToken aborting)
    {
        try
        {
            while (await committed.WaitToReadAsync(aborting).ConfigureAwait(false))
            {
                // The writer may have committed several batches meanwhile: report only the newest.
                var newest = TakeReceipts();
                if (stopping.IsCancellationRequested)
                    continue;
                connection.SetReplicationStatus(newest);
                try
                {
                    await connection.SendStatusUpdate(aborting).ConfigureAwait(false);
                }
                catch (Exception e) when (stopping.IsCancellationRequested && e is OperationCanceledException or InvalidOperationException or NpgsqlException)
                {
                    // The stream ended under it for the stop.
                    continue;
                }
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
