using Npgsql;
using Synchro.Pipeline.Postgres;
using Synchro.Pipeline.Protocol;

namespace Synchro.Pipeline.Runtime;

/// <summary>
/// The transient-error policy of a pipeline's run loop: which errors a reconnect from the persisted position may cure,
/// and how long to wait before it (capped exponential backoff, back to the first delay once the pipeline committed
/// something since the last failure).
/// </summary>
internal sealed class ReconnectPolicy(string slotName, TimeSpan maxDelay, CommittedPosition position)
{
    // The first retry after a lost connection; doubled up to the maximum.
    private static readonly TimeSpan s_firstDelay = TimeSpan.FromMilliseconds(200);

    // A walsender whose client vanished without closing lives until wal_sender_timeout (60 s by default) notices; past
    // that, a slot still "active for PID" is held by a consumer that is not a pipeline (pipelines exclude each other
    // through the slot lock before streaming), and retrying would fight it forever.
    private static readonly TimeSpan s_slotBusyGrace = TimeSpan.FromSeconds(75);

    private TimeSpan _delay = s_firstDelay;
    private Lsn _positionAtLastFailure;
    private long _slotBusySinceTicks;
    private long _slotBusyLastTicks;

    /// <summary>
    /// Whether to reconnect after <paramref name="error"/>: the connection or the server went away. The slot being held
    /// by a foreign consumer for longer than a vanished walsender can explain is fatal.
    /// </summary>
    /// <exception cref="WalPipelineException">The slot has been in use by another consumer for too long.</exception>
    public bool ShouldRetry(Exception error) => PostgresErrors.IsConnectionLoss(error) && !SlotBusyTooLong(error);

    /// <summary>The wait before the next attempt; a run that committed something since the last failure starts the backoff over.</summary>
    public TimeSpan NextDelay()
    {
        var committed = position.Value;
        if (committed != _positionAtLastFailure)
            _delay = s_firstDelay;
        _positionAtLastFailure = committed;
        var delay = _delay;
        _delay = TimeSpan.FromTicks(Math.Min(_delay.Ticks * 2, maxDelay.Ticks));
        return delay;
    }

    private bool SlotBusyTooLong(Exception error)
    {
        if (error is not PostgresException { SqlState: PostgresErrorCodes.ObjectInUse } busy)
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
        throw new WalPipelineException(
            $"Replication slot '{slotName}' has been in use by another connection for over {s_slotBusyGrace.TotalSeconds:F0} s ({busy.MessageText}); "
            + "it is not another pipeline (those are excluded by the slot lock) but some other consumer, such as pg_recvlogical or a subscription. "
            + "Stop it (pg_stat_replication shows it; pg_terminate_backend ends it), or give this pipeline its own slot.", error);
    }
}
