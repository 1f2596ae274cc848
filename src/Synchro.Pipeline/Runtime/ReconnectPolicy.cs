using Npgsql;
using Synchro.Pipeline.Postgres;
using Synchro.Pipeline.Protocol;

namespace Synchro.Pipeline.Runtime;

/// <summary>Why a failed attempt is retried.</summary>
internal enum RetryReason
{
    /// <summary>The connection or the server went away, or refused connections for now: retried without limit.</summary>
    ConnectionLoss,

    /// <summary>A statement timed out, deadlocked, hit a serialization failure or an unavailable lock, or was cancelled by someone else: retried a bounded number of times.</summary>
    Conflict,
}

/// <summary>
/// The retry policy of a pipeline's run loop, start-up included: which errors a new attempt from the persisted position may
/// cure, how many times, and how long to wait before it (capped exponential backoff with jitter).
/// </summary>
/// <remarks>
/// <para>
/// An episode is a run of failed attempts with nothing committed in between: it starts over once the committed position
/// moved since the last failure, or once an attempt ran for <see cref="StableRun"/> (a pipeline with nothing to commit and
/// heartbeats off moves no position). The backoff starts over with the episode, and so do <see cref="Attempt"/> and
/// <see cref="Since"/>, which the status and the health check report.
/// </para>
/// <para>
/// Invariant: a conflict (<see cref="RetryReason.Conflict"/>) is tried again at most <c>maxConflictRetries</c> times in a
/// row without the position moving — whatever the attempts' duration, since a statement that times out runs long — and the
/// next one is fatal. Nothing is lost by a retry: the failed attempt's changelog transaction rolled back, and the next
/// resumes from the persisted position (invariant 1).
/// </para>
/// </remarks>
internal sealed class ReconnectPolicy(string slotName, TimeSpan maxDelay, int maxConflictRetries, CommittedPosition position, Func<double>? random = null)
{
    // The first retry after a failure; doubled up to the maximum.
    private static readonly TimeSpan s_firstDelay = TimeSpan.FromMilliseconds(200);

    // A walsender whose client vanished without closing lives until wal_sender_timeout (60 s by default) notices; past
    // that, a slot still "active for PID" is held by a consumer that is not a pipeline (pipelines exclude each other
    // through the slot lock before streaming), and retrying would fight it forever.
    private static readonly TimeSpan s_slotBusyGrace = TimeSpan.FromSeconds(75);

    /// <summary>An attempt that ran this long before it failed ends the episode before it.</summary>
    public static readonly TimeSpan StableRun = TimeSpan.FromMinutes(1);

    private readonly Func<double> _random = random ?? Random.Shared.NextDouble;
    private TimeSpan _delay = s_firstDelay;
    private Lsn _positionAtLastFailure;
    private DateTime _attemptStarted = DateTime.UtcNow;
    private DateTime _since;
    private int _attempts;
    private int _conflicts;
    private long _slotBusySinceTicks;
    private long _slotBusyLastTicks;

    /// <summary>Failed attempts in the current episode; 0 before the first failure.</summary>
    public int Attempt => _attempts;

    /// <summary>When the current episode's first attempt failed.</summary>
    public DateTimeOffset Since => new(_since, TimeSpan.Zero);

    /// <summary>Conflicts in a row without the position moving (at most <c>maxConflictRetries</c> once <see cref="Decide"/> returned).</summary>
    public int Conflicts => _conflicts;

    /// <summary>The most conflicts in a row that are retried.</summary>
    public int MaxConflictRetries => maxConflictRetries;

    /// <summary>An attempt starts now (the first, or one after a wait).</summary>
    public void AttemptStarting() => _attemptStarted = DateTime.UtcNow;

    /// <summary>
    /// Whether to try again after <paramref name="error"/>, and why; null when the error is fatal as it is (configuration,
    /// privileges, a dropped slot, undecodable bytes). Counts the failure into the episode.
    /// </summary>
    /// <exception cref="WalPipelineException">
    /// The error is retryable but may not be tried again: the slot has been in use by another consumer for too long, or
    /// conflicts happened more than <c>maxConflictRetries</c> times in a row. The message says what happened and what to do.
    /// </exception>
    public RetryReason? Decide(Exception error)
    {
        RetryReason reason;
        if (error is WalPipelineConfigurationException)
            return null;
        if (error is StatementTimeoutException || PostgresErrors.IsTransientConflict(error))
            reason = RetryReason.Conflict;
        else if (PostgresErrors.IsConnectionLoss(error))
            reason = RetryReason.ConnectionLoss;
        else
            return null;

        var now = DateTime.UtcNow;
        var committed = position.Value;
        var progressed = committed != _positionAtLastFailure;
        _positionAtLastFailure = committed;
        if (progressed)
            _conflicts = 0;
        if (progressed || _attempts == 0 || now - _attemptStarted >= StableRun)
        {
            _attempts = 0;
            _since = now;
            _delay = s_firstDelay;
        }
        _attempts++;

        if (reason == RetryReason.ConnectionLoss && SlotBusyTooLong(error))
            throw SlotBusyError(error);
        if (reason == RetryReason.Conflict && ++_conflicts > maxConflictRetries)
        {
            throw new WalPipelineException(
                $"{PostgresErrors.DescribeConflict(error)} It happened {_conflicts} times in a row with nothing committed in between "
                + $"(MaxStatementRetries is {maxConflictRetries}), so the pipeline stops. Nothing after the last committed batch was applied: "
                + "fix the cause, then start the pipeline again; it resumes from the persisted position.", error);
        }
        return reason;
    }

    /// <summary>
    /// The wait before the next attempt: the episode's backoff (200 ms doubling up to the maximum) with jitter, a random
    /// point in its upper half, so pipelines that failed together do not all come back at once.
    /// </summary>
    public TimeSpan NextDelay()
    {
        var nominal = _delay;
        _delay = TimeSpan.FromTicks(Math.Min(_delay.Ticks * 2, maxDelay.Ticks));
        return nominal * (0.5 + (0.5 * _random()));
    }

    private bool SlotBusyTooLong(Exception error)
    {
        if (error is not PostgresException { SqlState: PostgresErrorCodes.ObjectInUse })
        {
            _slotBusySinceTicks = 0;
            return false;
        }
        var now = DateTime.UtcNow.Ticks;
        // One episode is a run of failures no further apart than the reconnect backoff; a later one starts afresh.
        if (_slotBusySinceTicks == 0 || TimeSpan.FromTicks(now - _slotBusyLastTicks) > maxDelay + s_slotBusyGrace)
            _slotBusySinceTicks = now;
        _slotBusyLastTicks = now;
        if (TimeSpan.FromTicks(now - _slotBusySinceTicks) < s_slotBusyGrace)
            return false;
        _slotBusySinceTicks = 0;
        return true;
    }

    private WalPipelineException SlotBusyError(Exception error) => new(
        $"Replication slot '{slotName}' has been in use by another connection for over {s_slotBusyGrace.TotalSeconds:F0} s ({((PostgresException)error).MessageText}); "
        + "it is not another pipeline (those are excluded by the slot lock) but some other consumer, such as pg_recvlogical or a subscription. "
        + "Stop it (pg_stat_replication shows it; pg_terminate_backend ends it), or give this pipeline its own slot.", error);
}
