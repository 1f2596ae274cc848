using Npgsql;
using Synchro.Pipeline.Protocol;
using Synchro.Pipeline.Replication;
using Synchro.Pipeline.Decoding;
using Synchro.Pipeline.Runtime;

namespace Synchro.Pipeline;

public sealed partial class WalPipeline
{
    // A walsender whose client vanished without closing lives until wal_sender_timeout (60 s by default) notices; past
    // that, a slot still "active for PID" is held by a consumer that is not a pipeline (pipelines exclude each other
    // through the slot lock before streaming), and retrying would fight it forever.
    private static readonly TimeSpan s_slotBusyGrace = TimeSpan.FromSeconds(75);

    private SlotLock? _slotLock;
    private long _slotBusySinceTicks;
    private long _slotBusyLastTicks;
    private MessageHandlerSet? _messageHandlers;
    private OriginFilter? _skipOrigins;

    // Taken from the options at the first run (they are validated by then).
    private MessageHandlerSet? Handlers => _messageHandlers ??= MessageHandlerSet.Create(_options.MessageHandlers);

    private OriginFilter? Origins => _skipOrigins ??= OriginFilter.Create(_options.SkipOrigins);

    /// <summary>
    /// Where the stream is asked to start. With message handlers, at the slot's own confirmed position (the server
    /// resends from there; the decoder skips the changes up to <paramref name="position"/>), because that position is
    /// advanced only after delivery while the persisted one may already be past an undelivered message.
    /// </summary>
    private Lsn StreamStart(Lsn position) => Handlers is null ? position : Lsn.Invalid;

    private void StartWatchers(StageGroup stages)
    {
        var loggers = _options.LoggerFactory;
        if (_options.EffectiveHeartbeatInterval > TimeSpan.Zero)
            stages.StartWatcher(new HeartbeatEmitter(_source, _options.EffectiveHeartbeatInterval, _metrics, loggers.CreateLogger(LogCategory + ".Committer")).RunAsync);
        if (_options.SlotHealthInterval > TimeSpan.Zero && _slotLock is { } slotLock)
        {
            var watch = new SlotHealthWatch(() => slotLock.Connection, _options.SlotName, _options.SlotHealthInterval, _options.SlotSafeWalSizeWarning, _metrics, _logger);
            stages.StartWatcher(watch.RunAsync);
        }
    }

    /// <summary>
    /// Whether <paramref name="error"/> is the slot being "active for PID" (object_in_use) for longer than a vanished
    /// walsender can explain; then it is fatal instead of transient.
    /// </summary>
    private bool SlotBusyTooLong(Exception error)
    {
        if (error is not PostgresException { SqlState: PostgresErrorCodes.ObjectInUse } busy)
        {
            _slotBusySinceTicks = 0;
            return false;
        }
        var now = DateTime.UtcNow.Ticks;
        // One episode is a run of failures no further apart than the reconnect backoff; a later one starts afresh.
        if (_slotBusySinceTicks == 0 || TimeSpan.FromTicks(now - _slotBusyLastTicks) > _options.MaxReconnectDelay + s_slotBusyGrace)
            _slotBusySinceTicks = now;
        _slotBusyLastTicks = now;
        if (TimeSpan.FromTicks(now - _slotBusySinceTicks) < s_slotBusyGrace)
            return false;
        _slotBusySinceTicks = 0;
        throw new WalPipelineException(
            $"Replication slot '{_options.SlotName}' has been in use by another connection for over {s_slotBusyGrace.TotalSeconds:F0} s ({busy.MessageText}); "
            + "it is not another pipeline (those are excluded by the slot lock) but some other consumer, such as pg_recvlogical or a subscription. "
            + "Stop it (pg_stat_replication shows it; pg_terminate_backend ends it), or give this pipeline its own slot.", error);
    }
}
