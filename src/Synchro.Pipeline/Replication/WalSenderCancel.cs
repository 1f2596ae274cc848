using Microsoft.Extensions.Logging;
using Npgsql;
using NpgsqlTypes;
using Synchro.Pipeline.Diagnostics;

namespace Synchro.Pipeline.Replication;

/// <summary>
/// Ends a replication stream from the server's side: <c>pg_cancel_backend</c> of its walsender, over an ordinary
/// connection. The walsender ends the stream with a query-cancelled error (57014), which the reader takes as the stop,
/// and waits for the next command; the replication connection stays usable and closes at once.
/// </summary>
/// <remarks>
/// Not Npgsql's own cancellation of the stream: Npgsql sends the cancel request synchronously inside the token's
/// callback and waits there for the server to close the cancel connection, and when socket completions run inline
/// (the CLI) the reader's continuation that ends the stream runs on a socket thread and waits for that callback, which
/// waits for a socket thread. An idle <c>run</c> then took Npgsql's 15 s cancel-connection timeout to stop, about one
/// stop in two. This cancel is an ordinary query: asynchronous, holding nothing of the replication connection. The
/// role may cancel it: the walsender runs as the same role.
/// </remarks>
internal sealed partial class WalSenderCancel(NpgsqlDataSource source, int walSenderPid, ILogger logger)
{
    private const string CancelSql = "SELECT pg_catalog.pg_cancel_backend(@pid)";

    // A cancel that reaches the walsender between two commands (the stop came as the stream was being started) is
    // ignored by the server; it is sent again this often until the reader has ended.
    private static readonly TimeSpan s_repeatAfter = TimeSpan.FromMilliseconds(500);

    /// <summary>
    /// Asks the server to end the stream, again every half second until <paramref name="readerEnded"/>; gives up (logged)
    /// when it cannot, and Npgsql's cancellation (<paramref name="aborting"/>) ends the stream after the stop's grace.
    /// </summary>
    public async Task EndAsync(CancellationToken readerEnded, CancellationToken aborting)
    {
        while (!readerEnded.IsCancellationRequested && await CancelAsync(aborting).ConfigureAwait(false))
        {
            try
            {
                await Task.Delay(s_repeatAfter, readerEnded).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private async Task<bool> CancelAsync(CancellationToken aborting)
    {
        try
        {
            await using var command = source.CreateCommand(CancelSql);
            command.Parameters.Add(new NpgsqlParameter<int>("pid", NpgsqlDbType.Integer) { TypedValue = walSenderPid });
            if (await command.ExecuteScalarAsync(aborting).ConfigureAwait(false) is true)
                return true;
            // False: no such backend any more — the stream has ended already.
            return false;
        }
        catch (Exception e) when (e is NpgsqlException or OperationCanceledException)
        {
            LogFailed(logger, e, walSenderPid, e.Message);
            return false;
        }
    }

    [LoggerMessage(EventId = EventIds.StreamEndFailed, Level = LogLevel.Warning,
        Message = "Could not have the server end the replication stream for the stop (pg_cancel_backend({Pid}): {Reason}); "
            + "the stream is cancelled from the client after the stop's grace instead, which takes longer")]
    private static partial void LogFailed(ILogger logger, Exception error, int pid, string reason);
}
