using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Npgsql;
using Npgsql.Replication;
using Synchro.Pipeline.Protocol;

namespace Synchro.Pipeline.Pipeline;

/// <summary>
/// Tells the server how far the changelog is durable, so it can release WAL. Invariant 2: the LSN
/// it reports is always the end of a source transaction the writer has committed, or a heartbeat's
/// position once everything before it is committed.
/// </summary>
/// <remarks>
/// When nothing has been committed for a status interval it emits a heartbeat — a non-transactional
/// logical decoding message (<see cref="HeartbeatPrefix"/>) — into the source WAL. The decoder turns
/// it into an empty batch, so an idle slot (or one that only sees WAL of unpublished tables, such as
/// the changelog's own writes) still advances.
/// </remarks>
internal sealed partial class LsnCommitter(ChannelReader<Lsn> committed, ReplicationConnection connection, NpgsqlDataSource source, TimeSpan idleInterval, ILogger logger)
{
    public const string HeartbeatPrefix = "synchro.heartbeat";

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            using var idle = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            idle.CancelAfter(idleInterval);
            try
            {
                if (!await committed.WaitToReadAsync(idle.Token).ConfigureAwait(false))
                    return;
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                await EmitHeartbeatAsync(cancellationToken).ConfigureAwait(false);
                continue;
            }

            // The writer may have committed several batches meanwhile: report only the newest.
            var newest = Lsn.Invalid;
            while (committed.TryRead(out var lsn))
                newest = Lsn.Max(newest, lsn);
            connection.SetReplicationStatus(newest);
            await connection.SendStatusUpdate(cancellationToken).ConfigureAwait(false);
            LogConfirmed(logger, newest);
        }
    }

    private async Task EmitHeartbeatAsync(CancellationToken cancellationToken)
    {
        await using var command = source.CreateCommand($"SELECT pg_logical_emit_message(false, '{HeartbeatPrefix}', '')");
        await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        LogHeartbeat(logger, idleInterval.TotalSeconds);
    }

    [LoggerMessage(EventId = 4001, Level = LogLevel.Debug, Message = "Confirmed position {Position} to the server")]
    private static partial void LogConfirmed(ILogger logger, Lsn position);

    [LoggerMessage(EventId = 4002, Level = LogLevel.Debug, Message = "Nothing committed for {Seconds} s: wrote a heartbeat message into the WAL")]
    private static partial void LogHeartbeat(ILogger logger, double seconds);
}
