using System.Globalization;
using Npgsql;

namespace Synchro.Pipeline.Postgres;

/// <summary>The kinds of statement the pipeline bounds with a timeout of their own (<c>WalPipelineOptions.*Timeout</c>).</summary>
internal enum StatementKind
{
    /// <summary>A statement of a batch's changelog transaction: the edge load, the changelog COPY, the edge changes, rule failures, the position, the commit.</summary>
    BatchWrite,

    /// <summary>A bucket rule's query in the source database: a SQL bucket function over a batch, or an application assigner's queries.</summary>
    RuleQuery,

    /// <summary>A lookup of parent rows in the source database (the parent chain, one level of one table per statement).</summary>
    ParentLookup,

    /// <summary>A TRUNCATE's one statement: the table's edges deleted and a delete row written per bucket; also the initial snapshot's removal of earlier edges.</summary>
    Truncate,

    /// <summary>A statement of the initial snapshot load: a FETCH of one chunk of rows, or writing one chunk's edges.</summary>
    SnapshotChunk,

    /// <summary>A statement of one chunk of <c>replay-failures</c> (the lock on the edges, the failures' reads and writes).</summary>
    ReplayChunk,
}

/// <summary>
/// The server-side <c>statement_timeout</c> of each <see cref="StatementKind"/>. The server cancels a statement that runs
/// past it (SQLSTATE 57014) and the connection stays usable; the error then names the kind and what to do
/// (<see cref="StatementTimeoutException"/>).
/// </summary>
/// <remarks>
/// Why the server's timeout and not Npgsql's <c>Command Timeout</c>: the server cancels exactly the statement, releases its
/// locks and rolls back its transaction with an error that says so, whereas the client-side timeout fires on the client's
/// clock (also while the client itself is slow), and when its cancel request is not answered in time Npgsql breaks the
/// connection, which is indistinguishable from a network failure. The client-side timeout is kept only as a backstop for a
/// server that stopped answering: <see cref="WithClientBackstop"/> raises it above every statement timeout.
/// </remarks>
internal sealed record StatementTimeouts(
    TimeSpan BatchWrite,
    TimeSpan RuleQuery,
    TimeSpan ParentLookup,
    TimeSpan Truncate,
    TimeSpan SnapshotChunk,
    TimeSpan ReplayChunk)
{
    /// <summary>How far above the longest statement timeout Npgsql's client-side timeout is set, so the server's always fires first.</summary>
    public static readonly TimeSpan ClientBackstopMargin = TimeSpan.FromMinutes(1);

    /// <summary>The longest timeout an option may have: <c>statement_timeout</c> is an int of milliseconds, and a day is plenty.</summary>
    public static readonly TimeSpan Longest = TimeSpan.FromDays(1);

    /// <summary>The timeout of <paramref name="kind"/>.</summary>
    public TimeSpan For(StatementKind kind) => kind switch
    {
        StatementKind.BatchWrite => BatchWrite,
        StatementKind.RuleQuery => RuleQuery,
        StatementKind.ParentLookup => ParentLookup,
        StatementKind.Truncate => Truncate,
        StatementKind.SnapshotChunk => SnapshotChunk,
        _ => ReplayChunk,
    };

    /// <summary>The option of <see cref="Pipeline.WalPipelineOptions"/> that sets the timeout of <paramref name="kind"/>.</summary>
    public static string OptionName(StatementKind kind) => kind + "Timeout";

    /// <summary>The value of <c>statement_timeout</c> for <paramref name="kind"/>: whole milliseconds, at least 1 (0 would turn it off).</summary>
    public string SettingFor(StatementKind kind) => Milliseconds(For(kind));

    /// <summary>The setting's text for <paramref name="timeout"/>.</summary>
    public static string Milliseconds(TimeSpan timeout) =>
        Math.Max(1L, (long)Math.Ceiling(timeout.TotalMilliseconds)).ToString(CultureInfo.InvariantCulture);

    /// <summary>
    /// <paramref name="connectionString"/> with Npgsql's client-side <c>Command Timeout</c> raised, when it is set and lower, to
    /// the longest statement timeout plus <see cref="ClientBackstopMargin"/>: it then only ends a connection whose server
    /// stopped answering, which the retry loop treats as a lost connection.
    /// </summary>
    public string WithClientBackstop(string connectionString)
    {
        var builder = new NpgsqlConnectionStringBuilder(connectionString);
        TimeSpan[] all = [BatchWrite, RuleQuery, ParentLookup, Truncate, SnapshotChunk, ReplayChunk];
        var backstop = (int)Math.Ceiling((all.Max() + ClientBackstopMargin).TotalSeconds);
        if (builder.CommandTimeout == 0 || builder.CommandTimeout >= backstop)
            return connectionString;
        builder.CommandTimeout = backstop;
        return builder.ConnectionString;
    }
}
