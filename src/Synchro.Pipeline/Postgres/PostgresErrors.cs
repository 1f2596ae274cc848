using System.Net.Sockets;
using Npgsql;

namespace Synchro.Pipeline.Postgres;

/// <summary>What a database error says about the connection it came from.</summary>
internal static class PostgresErrors
{
    /// <summary>
    /// Whether <paramref name="error"/> means the connection or the server went away (or refused to take a connection
    /// for now): a fact about the error. What to do about it is the caller's policy.
    /// </summary>
    public static bool IsConnectionLoss(Exception error) => error switch
    {
        PostgresException pg => pg.SqlState.StartsWith("08", StringComparison.Ordinal)
            || pg.SqlState is PostgresErrorCodes.AdminShutdown or PostgresErrorCodes.CrashShutdown or PostgresErrorCodes.CannotConnectNow
                or PostgresErrorCodes.ObjectInUse or PostgresErrorCodes.TooManyConnections,
        NpgsqlException npgsql => npgsql.IsTransient || npgsql.InnerException is IOException or SocketException or TimeoutException,
        IOException or SocketException or EndOfStreamException => true,
        _ => false,
    };
}
