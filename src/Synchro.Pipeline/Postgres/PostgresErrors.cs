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

    /// <summary>
    /// Whether <paramref name="error"/> is a cancellation as Npgsql reports it: an <see cref="OperationCanceledException"/>,
    /// or a read the cancellation broke off, which Npgsql wraps in an <see cref="NpgsqlException"/> ("Exception while reading
    /// from stream") around a <see cref="TaskCanceledException"/>. Whose cancellation it was is the caller's to know.
    /// </summary>
    public static bool IsCancellation(Exception error)
        => error is OperationCanceledException or NpgsqlException { InnerException: OperationCanceledException };

    /// <summary>
    /// Whether <paramref name="error"/> is the server refusing a value: SQLSTATE class 22 (data exception: an invalid byte
    /// sequence, a value out of range, an unsupported escape), 23 (integrity constraint violation: a CHECK, a unique key, a
    /// trigger's) or 54 (program limit exceeded: an index row too large). Such an error belongs to the rows written, not
    /// to the connection or the configuration.
    /// </summary>
    public static bool IsDataError(Exception error) =>
        error is PostgresException { SqlState: ['2', '2' or '3', _, _, _] or ['5', '4', _, _, _] };
}
