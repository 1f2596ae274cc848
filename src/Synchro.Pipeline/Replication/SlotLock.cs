using System.Diagnostics;
using System.Globalization;
using System.Text;
using Microsoft.Extensions.Logging;
using Npgsql;
using NpgsqlTypes;
using Synchro.Pipeline.Diagnostics;
using Synchro.Pipeline.Postgres;

namespace Synchro.Pipeline.Replication;

/// <summary>
/// One consumer per slot: a session-level advisory lock keyed by the slot name, held on a dedicated source connection
/// for as long as the pipeline consumes the slot, so a second pipeline on the same slot does not fight over it. Taking
/// it also waits for the slot itself to be free: a start right after a stop or a kill waits, for a bounded time
/// (<see cref="WalPipelineOptions.SlotWaitTimeout"/>), for the old session and walsender to go, saying who holds the slot,
/// and fails naming the holder only once that time has passed. With <see cref="WaitForLock"/> the wait for another
/// pipeline's lock has no bound (a passive instance).
/// </summary>
/// <remarks>
/// <para>
/// The key is (<see cref="LockClass"/>, <c>hashtext(slot)</c>) in the slot's database. Two slot names with the same
/// 32-bit hash would exclude each other — a false "in use", never two consumers; negligible, and the message names the
/// holder. The lock ends with its session: a server restart or a dropped connection releases it, so every run checks
/// that it still holds it (<see cref="EnsureAsync"/>) and takes it again.
/// </para>
/// <para>
/// The session asks the server for TCP keepalives (<see cref="KeepaliveSql"/>): an idle session whose client host
/// vanished is otherwise kept for the operating system's default of two hours, and with it the lock.
/// </para>
/// </remarks>
internal sealed partial class SlotLock(PostgresConnections connections, string connectionString, string slotName, TimeSpan waitTimeout, ILogger logger) : IAsyncDisposable
{
    /// <summary>
    /// Waits without a bound while another pipeline holds the lock (<see cref="WalPipelineOptions.WaitForLock"/>): the
    /// waiting instance takes over as soon as the holder's session ends. The walsender wait after it is still bounded.
    /// </summary>
    public bool WaitForLock { get; init; }

    /// <summary>Called when waiting for another pipeline's lock begins, and when its holder changes, with the holder described; before the wait, whatever the caller holds that the next holder needs is to be let go.</summary>
    public Func<string, CancellationToken, ValueTask>? Waiting { get; init; }

    // Unpooled: a pooled connection is reset (DISCARD ALL, which drops advisory locks) only when next used, so closing
    // one would leave the lock held by an idle pooled session.
    private readonly NpgsqlDataSource _sessions = connections.Unpooled(connectionString, PipelineConnectionKind.SlotLock);

    /// <summary>The advisory lock's first key: "SYNC" in ASCII, so the pipeline's locks are recognisable in pg_locks.</summary>
    public const int LockClass = 0x53594E43;

    private const string TryLockSql = "SELECT pg_catalog.pg_try_advisory_lock(@class, pg_catalog.hashtext(@slot))";

    private const string PingSql = "SELECT 1";

    /// <summary>Server-side keepalives for the lock's session: a vanished client is noticed after 10 s idle and 3 probes 5 s apart.</summary>
    /// <remarks>Ignored by the server on a Unix-domain socket, where there is no host to vanish.</remarks>
    public const string KeepaliveSql = "SELECT pg_catalog.set_config('tcp_keepalives_idle', '10', false), "
        + "pg_catalog.set_config('tcp_keepalives_interval', '5', false), pg_catalog.set_config('tcp_keepalives_count', '3', false)";

    // Session locks on two int4 keys show in pg_locks as classid = key 1, objid = key 2, objsubid = 2.
    private const string LockHolderSql = """
        SELECT a.pid, a.application_name, pg_catalog.host(a.client_addr), a.backend_start
        FROM pg_catalog.pg_locks l
        JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
        WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
          AND l.database = (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database())
          AND l.classid = @class::oid AND l.objid = pg_catalog.hashtext(@slot)::oid
        LIMIT 1
        """;

    // The walsender streaming the slot, if any.
    private const string SlotHolderSql = """
        SELECT s.active_pid, a.application_name, pg_catalog.host(a.client_addr), a.backend_start
        FROM pg_catalog.pg_replication_slots s
        LEFT JOIN pg_catalog.pg_stat_activity a ON a.pid = s.active_pid
        WHERE s.slot_name = @slot AND s.active_pid IS NOT NULL
        """;

    private static readonly TimeSpan s_retryDelay = TimeSpan.FromMilliseconds(200);

    private NpgsqlConnection? _connection;

    /// <summary>The connection holding the lock, for the slot health watch (which thereby also notices when it is lost); null before the first <see cref="EnsureAsync"/>.</summary>
    public NpgsqlConnection? Connection => _connection;

    /// <summary>
    /// Takes the lock and waits for the slot to be inactive, or checks that the session holding the lock is still alive
    /// and takes it again on a new one if not.
    /// </summary>
    /// <exception cref="WalPipelineException">The lock or the slot was still held by another session after the wait.</exception>
    public async Task EnsureAsync(CancellationToken cancellationToken)
    {
        if (_connection is { } held)
        {
            try
            {
                await using var ping = new NpgsqlCommand(PingSql, held);
                await ping.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false);
                return;
            }
            catch (Exception e) when (PostgresErrors.IsConnectionLoss(e) || e is InvalidOperationException)
            {
                // The session, and with it the lock, is gone: take it again.
                await held.DisposeAsync().ConfigureAwait(false);
                _connection = null;
            }
        }

        var connection = _sessions.CreateConnection();
        try
        {
            await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
            await using (var keepalive = new NpgsqlCommand(KeepaliveSql, connection))
                await keepalive.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            await AcquireAsync(connection, cancellationToken).ConfigureAwait(false);
            _connection = connection;
        }
        catch
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    // Invariant: returns only holding the lock with the slot inactive; every wait is announced once per kind of holder
    // (and, while waiting for the lock without a bound, once per holding session).
    private async Task AcquireAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        var started = Stopwatch.GetTimestamp();
        // The bound applies from the start, or, waiting for the lock without one, from when the lock was taken.
        var boundFrom = started;
        var locked = false;
        var waitedForPipeline = false;
        Holder? announced = null;
        while (true)
        {
            if (!locked && await TryLockAsync(connection, cancellationToken).ConfigureAwait(false))
            {
                locked = true;
                if (WaitForLock)
                    boundFrom = Stopwatch.GetTimestamp();
            }
            var holder = locked
                ? await FindHolderAsync(connection, SlotHolderSql, HolderKind.Walsender, cancellationToken).ConfigureAwait(false)
                : await FindHolderAsync(connection, LockHolderSql, HolderKind.Pipeline, cancellationToken).ConfigureAwait(false)
                    ?? new Holder(HolderKind.Pipeline, null, null, null, null);
            if (holder is null)
            {
                if (waitedForPipeline)
                    LogTookOver(logger, slotName, Stopwatch.GetElapsedTime(started).TotalSeconds);
                else if (announced is not null)
                    LogAcquired(logger, slotName, Stopwatch.GetElapsedTime(started).TotalSeconds);
                return;
            }
            if (WaitForLock && holder.Kind == HolderKind.Pipeline)
            {
                waitedForPipeline = true;
                // A holder that left between the two queries (no pid) is not announced: the next poll takes the lock or names the next.
                if (holder.Pid is not null && (announced is null || announced.Kind != holder.Kind || announced.Pid != holder.Pid))
                {
                    if (announced is null)
                        LogWaitingForLock(logger, slotName, holder.Describe());
                    else
                        LogHolderChanged(logger, slotName, holder.Describe());
                    announced = holder;
                    if (Waiting is { } waiting)
                        await waiting(holder.Describe(), cancellationToken).ConfigureAwait(false);
                }
                await Task.Delay(s_retryDelay, cancellationToken).ConfigureAwait(false);
                continue;
            }
            var waited = Stopwatch.GetElapsedTime(boundFrom);
            if (waited >= waitTimeout)
                throw new WalPipelineException(TimedOutMessage(holder, waited));
            if (announced?.Kind != holder.Kind)
            {
                announced = holder;
                LogWaiting(logger, slotName, holder.Describe(), waitTimeout.TotalSeconds);
            }
            await Task.Delay(s_retryDelay, cancellationToken).ConfigureAwait(false);
        }
    }

    private async Task<bool> TryLockAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(TryLockSql, connection);
        AddKey(command);
        return await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) is true;
    }

    private async Task<Holder?> FindHolderAsync(NpgsqlConnection connection, string sql, HolderKind kind, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        if (kind == HolderKind.Pipeline)
            AddKey(command);
        else
            command.Parameters.Add(new NpgsqlParameter<string>("slot", NpgsqlDbType.Text) { TypedValue = slotName });
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        if (!await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            return null;
        return new Holder(
            kind,
            reader.GetInt32(0),
            reader.IsDBNull(1) ? "" : reader.GetString(1),
            reader.IsDBNull(2) ? "a local socket" : reader.GetString(2),
            reader.IsDBNull(3) ? null : reader.GetDateTime(3));
    }

    private string TimedOutMessage(Holder holder, TimeSpan waited)
    {
        var wait = string.Create(CultureInfo.InvariantCulture, $"waited {waited.TotalSeconds:F0} s ({nameof(WalPipelineOptions.SlotWaitTimeout)})");
        return holder.Kind == HolderKind.Pipeline
            ? $"Replication slot '{slotName}' is already consumed by another pipeline{holder.InParentheses}; {wait}; one slot has one consumer. "
                + "Stop the other pipeline, or give this one its own slot (SlotName) and, if it writes to the same changelog, its own changelog database."
            : $"Replication slot '{slotName}' is in use by another connection{holder.InParentheses}; {wait}. It is not a running pipeline "
                + "(those hold the slot lock) but another consumer, such as pg_recvlogical or a subscription, or the walsender of a client that vanished "
                + "without closing its connection, which the server ends after wal_sender_timeout. "
                + $"Stop that consumer (SELECT pg_terminate_backend({holder.Pid?.ToString(CultureInfo.InvariantCulture) ?? "pid"})), or give this pipeline its own slot.";
    }

    private void AddKey(NpgsqlCommand command)
    {
        command.Parameters.Add(new NpgsqlParameter<int>("class", NpgsqlDbType.Integer) { TypedValue = LockClass });
        command.Parameters.Add(new NpgsqlParameter<string>("slot", NpgsqlDbType.Text) { TypedValue = slotName });
    }

    /// <summary>Releases the lock by closing its session.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_connection is { } connection)
        {
            _connection = null;
            await connection.DisposeAsync().ConfigureAwait(false);
        }
        await _sessions.DisposeAsync().ConfigureAwait(false);
    }

    private enum HolderKind
    {
        /// <summary>Another session holds the slot lock: a pipeline.</summary>
        Pipeline,

        /// <summary>A walsender streams the slot.</summary>
        Walsender,
    }

    /// <summary>Who holds the slot; the pid is null when the lock's holder left between the two queries.</summary>
    private sealed record Holder(HolderKind Kind, int? Pid, string? Application, string? Address, DateTime? Since)
    {
        /// <summary>"backend pid …, application_name '…', client …, connected since …", or empty.</summary>
        public string Details
        {
            get
            {
                if (Pid is not { } pid)
                    return "";
                var text = new StringBuilder();
                text.Append(CultureInfo.InvariantCulture, $"{(Kind == HolderKind.Pipeline ? "backend" : "walsender")} pid {pid}, application_name '{Application}', client {Address}");
                if (Since is { } since)
                    text.Append(CultureInfo.InvariantCulture, $", connected since {since:u}");
                return text.ToString();
            }
        }

        public string InParentheses => Details is { Length: > 0 } details ? $" ({details})" : "";

        public string Describe() => (Kind == HolderKind.Pipeline ? "the slot lock of another pipeline" : "another connection streaming it") + InParentheses;
    }

    [LoggerMessage(EventId = EventIds.SlotWaiting, Level = LogLevel.Warning,
        Message = "Replication slot {Slot} is held by {Holder}; waiting up to {Seconds} s (SlotWaitTimeout) for it to be released — a pipeline that is "
            + "still stopping lets go within seconds, a vanished client's walsender at wal_sender_timeout")]
    private static partial void LogWaiting(ILogger logger, string slot, string holder, double seconds);

    [LoggerMessage(EventId = EventIds.SlotAcquired, Level = LogLevel.Information, Message = "Replication slot {Slot} was released after {Seconds:F1} s; this pipeline holds it now")]
    private static partial void LogAcquired(ILogger logger, string slot, double seconds);

    [LoggerMessage(EventId = EventIds.LockWaiting, Level = LogLevel.Information,
        Message = "Waiting for replication slot {Slot} (WaitForLock): another instance is active and holds {Holder}; this instance takes over when that session ends")]
    private static partial void LogWaitingForLock(ILogger logger, string slot, string holder);

    [LoggerMessage(EventId = EventIds.LockHolderChanged, Level = LogLevel.Information,
        Message = "Replication slot {Slot} changed hands: now {Holder} holds it; this instance keeps waiting (WaitForLock)")]
    private static partial void LogHolderChanged(ILogger logger, string slot, string holder);

    [LoggerMessage(EventId = EventIds.LockTakenOver, Level = LogLevel.Warning,
        Message = "Took over replication slot {Slot} after waiting {Seconds:F1} s (WaitForLock): the active instance let go of it; resuming from the persisted position")]
    private static partial void LogTookOver(ILogger logger, string slot, double seconds);
}
