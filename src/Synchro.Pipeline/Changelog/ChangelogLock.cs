using System.Data;
using System.Globalization;
using System.Text;
using Microsoft.Extensions.Logging;
using Npgsql;
using Synchro.Pipeline.Diagnostics;
using Synchro.Pipeline.Postgres;

namespace Synchro.Pipeline.Changelog;

/// <summary>
/// One changelog, one writer (invariant 9 of docs/architecture.md): a session advisory lock in the changelog database,
/// keyed by the changelog (its schema; the database is part of every advisory lock), held by the very session the pipeline
/// writes the changelog on. A second pipeline writing the same changelog — whatever its slot — refuses to start and names
/// the holder.
/// </summary>
/// <remarks>
/// <para>
/// The session is the lock: the writer, the initial snapshot load and the start's own writes (a migration, the snapshot's
/// pending marker, a position moved to a recreated slot) all run on <see cref="EnsureAsync"/>'s connection, so nothing is
/// written without the lock, and a lost connection loses the lock and the writes together. Every run takes it again
/// before writing (a reconnect), on a new session when the old one is gone.
/// </para>
/// <para>
/// The key is (<see cref="LockClass"/>, <c>hashtext(schema)</c>). Two schema names with the same 32-bit hash would
/// exclude each other — a false "in use", never two writers. The holder also holds (<see cref="SlotClass"/>,
/// <c>hashtext(slot)</c>) shared, which conflicts with nothing and lets a refused pipeline name the holder's slot among
/// the slots of <c>sync_wal_position</c>. Unpooled: a pooled session is reset (DISCARD ALL drops advisory locks) only
/// when it is next used, so a closed pooled connection would keep the lock in an idle session.
/// </para>
/// </remarks>
internal sealed partial class ChangelogLock : IAsyncDisposable
{
    /// <summary>The lock's first key: "SYNW" in ASCII (the slot lock's is "SYNC").</summary>
    public const int LockClass = 0x53594E57;

    /// <summary>The first key of the shared lock that names the holder's slot: "SYNS" in ASCII.</summary>
    public const int SlotClass = 0x53594E53;

    // CASE keeps the order: the slot's shared lock is taken only with the writer's lock.
    private const string TryLockSql = """
        SELECT CASE WHEN pg_catalog.pg_try_advisory_lock($1, pg_catalog.hashtext($2))
                    THEN pg_catalog.pg_try_advisory_lock_shared($3, pg_catalog.hashtext($4)) ELSE false END
        """;

    private const string PingSql = "SELECT 1";

    // As the slot lock's session: a session whose client host vanished (no FIN) would keep the lock for the operating
    // system's default of two hours; the server notices after 10 s idle and 3 probes 5 s apart. Ignored on a Unix socket.
    private const string KeepaliveSql = "SELECT pg_catalog.set_config('tcp_keepalives_idle', '10', false), "
        + "pg_catalog.set_config('tcp_keepalives_interval', '5', false), pg_catalog.set_config('tcp_keepalives_count', '3', false)";

    // Who holds the lock, and since when its session exists: a pid alone could have been reused.
    private const string HolderSessionSql = """
        SELECT l.pid, a.backend_start
        FROM pg_catalog.pg_locks l
        JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
        WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
          AND l.database = (SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database())
          AND l.classid = $1::oid AND l.objid = pg_catalog.hashtext($2)::oid
        """;

    private const string OwnSessionSql = "SELECT a.backend_start FROM pg_catalog.pg_stat_activity a WHERE a.pid = pg_catalog.pg_backend_pid()";

    private const string TerminateSql = "SELECT pg_catalog.pg_terminate_backend($1)";

    // Session locks on two int4 keys show in pg_locks as classid = key 1, objid = key 2, objsubid = 2. Another role's
    // session shows no client address without pg_read_all_stats; its query then reads "<insufficient privilege>".
    private const string HolderSql = """
        SELECT a.pid, a.application_name, pg_catalog.host(a.client_addr), a.backend_start, a.usename::text,
               a.query IS NOT DISTINCT FROM '<insufficient privilege>'
        FROM pg_catalog.pg_locks l
        JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
        WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
          AND l.database = (SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database())
          AND l.classid = $1::oid AND l.objid = pg_catalog.hashtext($2)::oid
        LIMIT 1
        """;

    // sync_wal_position is found in the changelog schema by the session's pinned search_path.
    private const string HolderSlotSql = """
        SELECT p.slot_name FROM sync_wal_position p
        WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_locks s
                      WHERE s.pid = $1 AND s.locktype = 'advisory' AND s.granted AND s.objsubid = 2
                        AND s.classid = $2::oid AND s.objid = pg_catalog.hashtext(p.slot_name)::oid)
        ORDER BY p.slot_name
        """;

    // A pipeline that was stopped or killed a moment ago may still hold the lock for the time the server takes to see
    // its closed socket; a live holder is still there after this. Kept short: the slot lock, taken first, waits for a
    // stopping pipeline of the same slot already.
    private static readonly TimeSpan s_holderExitGrace = TimeSpan.FromSeconds(2);

    private static readonly TimeSpan s_retryDelay = TimeSpan.FromMilliseconds(100);

    // While waiting without a bound: how often the holder is looked up again (the lock itself is tried at every retry).
    private static readonly TimeSpan s_waitingRecheck = TimeSpan.FromSeconds(5);

    private readonly NpgsqlDataSource _sessions;
    private readonly string _schema;
    private readonly string _slotName;
    private readonly ILogger _logger;
    private NpgsqlConnection? _connection;
    private Session _held;
    // The session that held the lock until its connection was dropped or replaced: its backend may outlive the
    // connection (one waiting for a table lock notices the closed socket only when it gets the lock).
    private Session? _lost;

    /// <param name="connections">Where the lock's sessions come from.</param>
    /// <param name="connectionString">The changelog connection string, its search_path pinned (<see cref="SessionSearchPath.Changelog"/>).</param>
    /// <param name="schema">The changelog schema: the lock's key.</param>
    /// <param name="slotName">This pipeline's slot, named to a refused pipeline.</param>
    /// <param name="logger">Says when the lock is taken again after its session was lost.</param>
    public ChangelogLock(PostgresConnections connections, string connectionString, string schema, string slotName, ILogger logger)
    {
        _sessions = connections.Unpooled(connectionString, PipelineConnectionKind.ChangelogLock);
        _schema = schema;
        _slotName = slotName;
        _logger = logger;
    }

    /// <summary>
    /// The session that holds the lock, to write the changelog on: the one already held when it is still alive, the same
    /// connection taken again when its session was replaced (a reopened connection), else a new one.
    /// </summary>
    /// <exception cref="WalPipelineException">Another session holds the lock: another pipeline writes this changelog.</exception>
    public async Task<NpgsqlConnection> EnsureAsync(CancellationToken cancellationToken)
    {
        if (_connection is { } held)
        {
            try
            {
                if (held.FullState == ConnectionState.Open && held.ProcessID == _held.Pid)
                {
                    await using var ping = new NpgsqlCommand(PingSql, held);
                    await ping.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false);
                    return held;
                }
                if (held.FullState == ConnectionState.Open)
                {
                    // Reopened by its user (a refused replication origin closes it): the lock ended with the old session.
                    _lost = _held;
                    await TakeAsync(held, cancellationToken).ConfigureAwait(false);
                    LogTakenAgain(_logger, _schema, "its connection was reopened");
                    return held;
                }
            }
            catch (Exception e) when (PostgresErrors.IsConnectionLoss(e) || e is InvalidOperationException)
            {
                // The session, and with it the lock, is gone: take it on a new one.
            }
            _connection = null;
            _lost = _held;
            await held.DisposeAsync().ConfigureAwait(false);
            var taken = await OpenAndTakeAsync(cancellationToken).ConfigureAwait(false);
            LogTakenAgain(_logger, _schema, "its session was lost");
            return taken;
        }
        return await OpenAndTakeAsync(cancellationToken).ConfigureAwait(false);
    }

    private async Task<NpgsqlConnection> OpenAndTakeAsync(CancellationToken cancellationToken)
    {
        var connection = _sessions.CreateConnection();
        try
        {
            await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
            await TakeAsync(connection, cancellationToken).ConfigureAwait(false);
            _connection = connection;
            return connection;
        }
        catch
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>
    /// Waits without a bound, past the holder's exit grace, while another session holds the lock
    /// (<see cref="WalPipelineOptions.WaitForLock"/>), instead of refusing; the wait is logged once per holder description.
    /// </summary>
    public bool WaitForLock { get; init; }

    /// <summary>Called when a wait for another session's lock begins and when its holder changes, with the refusal that would otherwise end the start.</summary>
    public Action<string>? Waiting { get; init; }

    private async Task TakeAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        await using (var keepalive = new NpgsqlCommand(KeepaliveSql, connection))
            await keepalive.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        await using (var command = new NpgsqlCommand(TryLockSql, connection))
        {
            command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = LockClass });
            command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = _schema });
            command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = SlotClass });
            command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = _slotName });
            var started = DateTime.UtcNow;
            var deadline = started + s_holderExitGrace;
            string? announced = null;
            while (true)
            {
                if (await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is true)
                {
                    _held = new Session(connection.ProcessID, await OwnSessionStartAsync(connection, cancellationToken).ConfigureAwait(false));
                    _lost = null;
                    if (announced is not null)
                        LogTakenAfterWait(_logger, _schema, (DateTime.UtcNow - started).TotalSeconds);
                    return;
                }
                if (_lost is { } lost && await EndIfOwnAsync(connection, lost, cancellationToken).ConfigureAwait(false))
                {
                    _lost = null;
                    deadline = DateTime.UtcNow + s_holderExitGrace;
                    continue;
                }
                if (DateTime.UtcNow >= deadline)
                {
                    if (!WaitForLock)
                        break;
                    var holder = await DescribeHolderAsync(connection, cancellationToken).ConfigureAwait(false);
                    if (holder != announced)
                    {
                        announced = holder;
                        LogWaiting(_logger, _schema, holder);
                        Waiting?.Invoke(holder);
                    }
                    deadline = DateTime.UtcNow + s_waitingRecheck;
                }
                await Task.Delay(s_retryDelay, cancellationToken).ConfigureAwait(false);
            }
        }
        throw new WalPipelineException(await DescribeHolderAsync(connection, cancellationToken).ConfigureAwait(false));
    }

    /// <summary>
    /// Ends this pipeline's own earlier session when it is the one holding the lock (same pid, same start): its connection
    /// was dropped, but its backend lives on until it notices, and whatever it still commits the persisted position, read
    /// after this, shows. Another session is never ended.
    /// </summary>
    private async Task<bool> EndIfOwnAsync(NpgsqlConnection connection, Session lost, CancellationToken cancellationToken)
    {
        await using (var holder = new NpgsqlCommand(HolderSessionSql, connection))
        {
            holder.Parameters.Add(new NpgsqlParameter<int> { TypedValue = LockClass });
            holder.Parameters.Add(new NpgsqlParameter<string> { TypedValue = _schema });
            await using var reader = await holder.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            if (!await reader.ReadAsync(cancellationToken).ConfigureAwait(false) || reader.GetInt32(0) != lost.Pid
                || reader.IsDBNull(1) || reader.GetDateTime(1) != lost.Started)
                return false;
        }
        await using (var terminate = new NpgsqlCommand(TerminateSql, connection))
        {
            terminate.Parameters.Add(new NpgsqlParameter<int> { TypedValue = lost.Pid });
            await terminate.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false);
        }
        LogEndedOwnSession(_logger, _schema, lost.Pid);
        return true;
    }

    private static async Task<DateTime> OwnSessionStartAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(OwnSessionSql, connection);
        return await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is DateTime started ? started : default;
    }

    private async Task<string> DescribeHolderAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        var holder = new StringBuilder();
        int? pid = null;
        await using (var command = new NpgsqlCommand(HolderSql, connection))
        {
            command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = LockClass });
            command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = _schema });
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            if (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                pid = reader.GetInt32(0);
                var application = reader.IsDBNull(1) ? "" : reader.GetString(1);
                var hidden = reader.GetBoolean(5);
                var address = !reader.IsDBNull(2) ? reader.GetString(2) : hidden ? "hidden from this role (pg_read_all_stats shows it)" : "a local socket";
                holder.Append(CultureInfo.InvariantCulture, $"backend pid {pid}, application_name '{application}', client {address}");
                if (!reader.IsDBNull(4))
                    holder.Append(CultureInfo.InvariantCulture, $", role {PgIdentifier.Quote(reader.GetString(4))}");
                if (!reader.IsDBNull(3))
                    holder.Append(CultureInfo.InvariantCulture, $", connected since {reader.GetDateTime(3):u}");
            }
        }
        if (pid is { } holderPid)
            holder.Append(", ").Append(await DescribeHolderSlotAsync(connection, holderPid, cancellationToken).ConfigureAwait(false));
        var who = holder.Length > 0 ? $" ({holder})" : "";
        var end = pid is { } p ? $", or end its session with SELECT pg_terminate_backend({p.ToString(CultureInfo.InvariantCulture)})" : "";
        return $"The changelog in schema {PgIdentifier.Quote(_schema)} of this database is already written by another pipeline{who}. "
            + "One changelog has one writer: two would interleave seq out of commit order, and clients would miss rows. "
            + "Stop the other pipeline, or give this one a changelog of its own (another database, or another schema first in the Search Path of ChangelogConnectionString). "
            + $"If the other pipeline was just stopped or killed, its session ends when the server notices: start again in a moment{end}.";
    }

    private async Task<string> DescribeHolderSlotAsync(NpgsqlConnection connection, int pid, CancellationToken cancellationToken)
    {
        var slots = new List<string>();
        try
        {
            await using var command = new NpgsqlCommand(HolderSlotSql, connection);
            command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = pid });
            command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = SlotClass });
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                slots.Add(reader.GetString(0));
        }
        catch (PostgresException e) when (e.SqlState is PostgresErrorCodes.UndefinedTable or PostgresErrorCodes.InsufficientPrivilege)
        {
            // No sync_wal_position yet, or not readable by this role: the slot is not known.
        }
        return slots.Count switch
        {
            0 => "slot not known (it has saved no position in this changelog yet)",
            1 => $"slot '{slots[0]}'",
            _ => $"slot one of '{string.Join("', '", slots)}'",
        };
    }

    /// <summary>Releases the lock by closing its session.</summary>
    public async ValueTask DisposeAsync()
    {
        await ReleaseAsync().ConfigureAwait(false);
        await _sessions.DisposeAsync().ConfigureAwait(false);
    }

    /// <summary>Releases the lock by closing its session; the next <see cref="EnsureAsync"/> takes it on a new one.</summary>
    public async ValueTask ReleaseAsync()
    {
        if (_connection is { } connection)
        {
            _connection = null;
            await connection.DisposeAsync().ConfigureAwait(false);
        }
    }

    [LoggerMessage(EventId = EventIds.ChangelogLockTakenAgain, Level = LogLevel.Information,
        Message = "The changelog lock of schema {Schema} was still held by this pipeline's own earlier session (backend pid {Pid}), whose connection was dropped while the server kept it waiting: ended it to take the lock again")]
    private static partial void LogEndedOwnSession(ILogger logger, string schema, int pid);

    [LoggerMessage(EventId = EventIds.ChangelogLockTakenAgain, Level = LogLevel.Information,
        Message = "Took the changelog lock of schema {Schema} again before writing ({Reason}): the lock ends with the session that holds it")]
    private static partial void LogTakenAgain(ILogger logger, string schema, string reason);

    [LoggerMessage(EventId = EventIds.ChangelogLockWaiting, Level = LogLevel.Warning,
        Message = "Waiting for the changelog lock of schema {Schema} (WaitForLock) instead of stopping: {Holder}")]
    private static partial void LogWaiting(ILogger logger, string schema, string holder);

    [LoggerMessage(EventId = EventIds.ChangelogLockTaken, Level = LogLevel.Information,
        Message = "Took the changelog lock of schema {Schema} after waiting {Seconds:F1} s (WaitForLock)")]
    private static partial void LogTakenAfterWait(ILogger logger, string schema, double seconds);

    /// <summary>A server session: its backend pid and when it started (a pid alone can be reused).</summary>
    private readonly record struct Session(int Pid, DateTime Started);
}
