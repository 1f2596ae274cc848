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
        // A multi-host connection string found no host of the kind it asks for: a failover in progress (a standby not yet
        // promoted, a dead primary); each host's own failure, if it had one, is inside.
        NpgsqlException { InnerException: AggregateException hosts } => hosts.InnerExceptions.All(IsConnectionLoss),
        // The password provider failed: waited for when its token endpoint was unreachable, fatal otherwise.
        NpgsqlException { InnerException: PasswordProviderException provider } => provider.IsTransient,
        PasswordProviderException provider => provider.IsTransient,
        NpgsqlException { InnerException: null } npgsql when npgsql.Message.StartsWith(NoSuitableHost, StringComparison.Ordinal) => true,
        NpgsqlException npgsql => npgsql.IsTransient || npgsql.InnerException is IOException or SocketException or TimeoutException,
        IOException or SocketException or EndOfStreamException => true,
        _ => false,
    };

    // Npgsql's words when no host of a multi-host connection string fits Target Session Attributes.
    private const string NoSuitableHost = "No suitable host was found";

    /// <summary>
    /// Whether <paramref name="error"/> is a cancellation as Npgsql reports it: an <see cref="OperationCanceledException"/>,
    /// or a read the cancellation broke off, which Npgsql wraps in an <see cref="NpgsqlException"/> ("Exception while reading
    /// from stream") around a <see cref="TaskCanceledException"/>. Whose cancellation it was is the caller's to know.
    /// </summary>
    public static bool IsCancellation(Exception error)
        => error is OperationCanceledException or NpgsqlException { InnerException: OperationCanceledException };

    /// <summary>
    /// <paramref name="error"/> in one line for a log message: a server error as <c>SQLSTATE: message</c> (without the
    /// DETAIL lines Npgsql adds), a client error with its cause (<c>Failed to connect to host:port (Connection refused)</c>).
    /// </summary>
    public static string OneLine(Exception error) => error switch
    {
        PostgresException pg => $"{pg.SqlState}: {pg.MessageText}",
        NpgsqlException { InnerException: { } cause } npgsql when cause is not PostgresException => $"{npgsql.Message} ({cause.Message})",
        _ => error.Message,
    };

    /// <summary>
    /// Whether <paramref name="error"/> is a conflict with other sessions that a later attempt may not meet: a deadlock
    /// (40P01), a serialization failure (40001), a lock not available (55P03, <c>lock_timeout</c> or <c>NOWAIT</c>), or a
    /// query cancelled (57014) by someone else (<c>pg_cancel_backend</c>) or by a statement timeout.
    /// </summary>
    public static bool IsTransientConflict(Exception error) =>
        error is PostgresException
        {
            SqlState: PostgresErrorCodes.DeadlockDetected or PostgresErrorCodes.SerializationFailure or PostgresErrorCodes.LockNotAvailable
                or PostgresErrorCodes.QueryCanceled,
        };

    /// <summary>
    /// Whether <paramref name="error"/> is the server cancelling a statement for running past <c>statement_timeout</c>.
    /// </summary>
    /// <remarks>
    /// SQLSTATE 57014 is shared with a cancel request (<c>pg_cancel_backend</c>, a client's cancel). The English message says
    /// which; on a server with other <c>lc_messages</c> a cancel that came after the statement had run for
    /// <paramref name="timeout"/> (its <paramref name="elapsed"/> time) counts as the timeout, which it must have been,
    /// unless someone cancelled it in the instant before the server would have.
    /// </remarks>
    public static bool IsStatementTimeout(Exception error, TimeSpan timeout, TimeSpan elapsed) =>
        error is PostgresException { SqlState: PostgresErrorCodes.QueryCanceled } pg
        && (pg.MessageText.Contains("statement timeout", StringComparison.Ordinal) || elapsed >= timeout);

    /// <summary>What a conflict was, in words that say where to look; a timeout's message already does.</summary>
    public static string DescribeConflict(Exception error) => error switch
    {
        StatementTimeoutException timeout => timeout.Message,
        PostgresException { SqlState: PostgresErrorCodes.DeadlockDetected } pg =>
            $"A statement deadlocked with another session ({pg.SqlState}: {pg.MessageText}); the server log names the other process "
            + "(an application or a replay writing the sidecar tables, or the tables a rule reads).",
        PostgresException { SqlState: PostgresErrorCodes.SerializationFailure } pg =>
            $"A statement failed to serialize with another session ({pg.SqlState}: {pg.MessageText}).",
        PostgresException { SqlState: PostgresErrorCodes.LockNotAvailable } pg =>
            $"A statement could not get a lock ({pg.SqlState}: {pg.MessageText}): lock_timeout (of the pipeline's role or database, or "
            + "a rule's) ran out; look for long lock holders on the sidecar tables and the tables rules read (pg_locks).",
        PostgresException { SqlState: PostgresErrorCodes.QueryCanceled } pg =>
            $"A statement was cancelled by another session ({pg.SqlState}: {pg.MessageText}), with pg_cancel_backend or a cancel request; "
            + "find who cancels the pipeline's queries.",
        _ => error.Message,
    };

    /// <summary>
    /// Whether <paramref name="error"/> is the server refusing a value: SQLSTATE class 22 (data exception: an invalid byte
    /// sequence, a value out of range, an unsupported escape), 23 (integrity constraint violation: a CHECK, a unique key, a
    /// trigger's) or 54 (program limit exceeded: an index row too large). Such an error belongs to the rows written, not
    /// to the connection or the configuration.
    /// </summary>
    public static bool IsDataError(Exception error) =>
        error is PostgresException { SqlState: ['2', '2' or '3', _, _, _] or ['5', '4', _, _, _] };
}
