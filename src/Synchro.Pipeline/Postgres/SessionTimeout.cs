using System.Diagnostics;
using Npgsql;

namespace Synchro.Pipeline.Postgres;

/// <summary>
/// The <c>statement_timeout</c> of one open connection that runs statements of several kinds (the writer's source
/// connection: rule queries and parent lookups; the snapshot load's: chunks, rule queries and parent lookups): set for
/// the kind about to run, with a round trip only when the value changes.
/// </summary>
/// <remarks>
/// Invariant: <see cref="Kind"/> is the kind whose timeout the session has, so a statement timeout on the connection is
/// reported as that kind's. Set with <c>set_config(…, false)</c>, a session setting: inside a transaction that later rolls
/// back it would revert, so a connection in a transaction that may roll back and go on must not use one (none does: the
/// snapshot load's transaction ends its connection's use).
/// </remarks>
internal sealed class SessionTimeout(NpgsqlConnection connection, StatementTimeouts timeouts)
{
    private const string SetSql = "SELECT pg_catalog.set_config('statement_timeout', $1, false)";

    private string? _current;
    private long _startedTimestamp;

    /// <summary>The timeouts of every kind.</summary>
    public StatementTimeouts Timeouts => timeouts;

    /// <summary>The kind the session's timeout is set for; meaningful after the first <see cref="UseAsync"/>.</summary>
    public StatementKind Kind { get; private set; }

    /// <summary>The timeout of <see cref="Kind"/>.</summary>
    public TimeSpan Timeout => timeouts.For(Kind);

    /// <summary>Sets the session's timeout for <paramref name="kind"/> (a round trip only when the value changes) and starts its clock.</summary>
    public async ValueTask UseAsync(StatementKind kind, CancellationToken cancellationToken)
    {
        Kind = kind;
        _startedTimestamp = Stopwatch.GetTimestamp();
        var setting = timeouts.SettingFor(kind);
        if (setting == _current)
            return;
        var command = new NpgsqlCommand(SetSql, connection) { Parameters = { new NpgsqlParameter<string> { TypedValue = setting } } };
        await using (command.ConfigureAwait(false))
            await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        _current = setting;
    }

    /// <summary>
    /// <paramref name="error"/> as the statement timeout of <see cref="Kind"/> when it is one (see
    /// <see cref="PostgresErrors.IsStatementTimeout"/>; the clock started at the last <see cref="UseAsync"/>); null otherwise.
    /// </summary>
    public StatementTimeoutException? AsTimeout(Exception error, string what) =>
        PostgresErrors.IsStatementTimeout(error, Timeout, Stopwatch.GetElapsedTime(_startedTimestamp))
            ? new StatementTimeoutException(Kind, Timeout, what, error)
            : null;

    /// <summary>Sets <c>statement_timeout</c> for <paramref name="kind"/> until the end of the open transaction (<c>SET LOCAL</c>).</summary>
    public static async Task SetLocalAsync(NpgsqlConnection connection, StatementTimeouts timeouts, StatementKind kind, CancellationToken cancellationToken)
    {
        var command = new NpgsqlCommand("SELECT pg_catalog.set_config('statement_timeout', $1, true)", connection)
        {
            Parameters = { new NpgsqlParameter<string> { TypedValue = timeouts.SettingFor(kind) } },
        };
        await using (command.ConfigureAwait(false))
            await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Sets <c>statement_timeout</c> for <paramref name="kind"/> for the session of <paramref name="connection"/>.</summary>
    public static async Task SetAsync(NpgsqlConnection connection, StatementTimeouts timeouts, StatementKind kind, CancellationToken cancellationToken)
    {
        var command = new NpgsqlCommand(SetSql, connection) { Parameters = { new NpgsqlParameter<string> { TypedValue = timeouts.SettingFor(kind) } } };
        await using (command.ConfigureAwait(false))
            await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }
}
