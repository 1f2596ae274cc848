using Microsoft.Extensions.Logging;
using Npgsql;
using NpgsqlTypes;
using Synchro.Pipeline.Protocol;
using Synchro.Pipeline.Decoding;
using Synchro.Pipeline.Postgres;
using Synchro.Pipeline.Diagnostics;

namespace Synchro.Pipeline.Runtime;

/// <summary>
/// Writes a heartbeat — a non-transactional logical decoding message with the prefix
/// <see cref="HeartbeatMessage.Prefix"/> — into the source WAL whenever nothing was committed for an interval.
/// </summary>
/// <remarks>
/// The walsender decodes only its own database, and pgoutput sends nothing for transactions that touch no published
/// table, so without this a slot whose tables are idle never moves while other databases (or unpublished tables) write
/// WAL, and the server keeps all of that WAL for it. The decoder turns the heartbeat into a heartbeat item, whose position is
/// persisted and then confirmed. A heartbeat that fails is a warning; one that fails because the connection or the server
/// is gone ends the run, which then reconnects — that is also how a caught-up pipeline lets go of a server that is
/// shutting down (a fast shutdown waits for logical walsenders until their client confirms everything sent).
/// </remarks>
internal sealed partial class HeartbeatEmitter(NpgsqlDataSource source, TimeSpan interval, CommittedPosition position, ILogger logger)
{
    private const string EmitSql = "SELECT pg_catalog.pg_logical_emit_message(false, @prefix, ''::text)";

    /// <param name="stopping">Ends the ticks: no heartbeat starts once the run is stopping.</param>
    /// <param name="aborting">Cancels a heartbeat in flight (the stop's grace ran out).</param>
    public async Task RunAsync(CancellationToken stopping, CancellationToken aborting)
    {
        // Invariant: a tick emits unless a batch other than the last heartbeat's was committed since the previous tick.
        var watermark = position.Value;
        var failing = false;
        using var timer = new PeriodicTimer(interval);
        while (await timer.WaitForNextTickAsync(stopping).ConfigureAwait(false))
        {
            var committed = position.Value;
            if (committed > watermark)
            {
                watermark = committed;
                continue;
            }
            try
            {
                watermark = Lsn.Max(watermark, await EmitAsync(aborting).ConfigureAwait(false));
                LogHeartbeat(logger, interval.TotalSeconds);
                failing = false;
            }
            catch (Exception e) when (!PostgresErrors.IsConnectionLoss(e) && !PostgresErrors.IsCancellation(e))
            {
                if (!failing)
                    LogHeartbeatFailed(logger, e, e.Message);
                failing = true;
            }
        }
    }

    private async Task<Lsn> EmitAsync(CancellationToken cancellationToken)
    {
        await using var command = source.CreateCommand(EmitSql);
        command.Parameters.Add(new NpgsqlParameter<string>("prefix", NpgsqlDbType.Text) { TypedValue = HeartbeatMessage.Prefix });
        var lsn = await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false);
        return lsn is NpgsqlLogSequenceNumber value ? (Lsn)value : Lsn.Invalid;
    }

    [LoggerMessage(EventId = EventIds.HeartbeatWritten, Level = LogLevel.Debug, Message = "Nothing committed for {Seconds} s: wrote a heartbeat message into the WAL")]
    private static partial void LogHeartbeat(ILogger logger, double seconds);

    [LoggerMessage(EventId = EventIds.HeartbeatFailed, Level = LogLevel.Warning,
        Message = "Could not write a heartbeat into the source WAL ({Reason}); while this lasts an idle slot does not advance and holds WAL back. "
            + "The role needs EXECUTE on pg_logical_emit_message, on a primary; or turn heartbeats off (HeartbeatInterval 0)")]
    private static partial void LogHeartbeatFailed(ILogger logger, Exception error, string reason);
}
