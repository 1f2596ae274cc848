using System.Net.Sockets;
using Npgsql;

namespace Synchro.Pipeline.Cli.Database;

/// <summary>Sorts database errors into "could not reach it" and "it refused us", the two that are not bugs.</summary>
internal static class DatabaseFailures
{
    /// <summary>
    /// Whether <paramref name="error"/> or an exception inside it means the server could not be reached: refused,
    /// timed out, unknown host, shutting down, starting up, or out of connection slots.
    /// </summary>
    public static bool IsUnreachable(Exception? error)
    {
        for (var e = error; e is not null; e = e.InnerException)
        {
            switch (e)
            {
                case PostgresException pg when pg.SqlState.StartsWith("08", StringComparison.Ordinal)
                    || pg.SqlState is PostgresErrorCodes.AdminShutdown or PostgresErrorCodes.CrashShutdown
                        or PostgresErrorCodes.CannotConnectNow or PostgresErrorCodes.TooManyConnections:
                    return true;
                case PostgresException:
                    return false;
                case SocketException or TimeoutException:
                    return true;
                case NpgsqlException { IsTransient: true }:
                    return true;
            }
        }
        return false;
    }

    /// <summary>
    /// The server's refusal of the login or of a privilege, which a setting or a GRANT fixes: bad password or user,
    /// no such database, missing privilege, no pg_hba.conf entry. Null for anything else.
    /// </summary>
    public static PostgresException? Refusal(Exception? error)
    {
        for (var e = error; e is not null; e = e.InnerException)
        {
            if (e is PostgresException pg)
            {
                return pg.SqlState.StartsWith("28", StringComparison.Ordinal)
                    || pg.SqlState is PostgresErrorCodes.InvalidCatalogName or PostgresErrorCodes.InsufficientPrivilege
                    ? pg
                    : null;
            }
        }
        return null;
    }
}
