using Synchro.Pipeline.Compaction;
using Synchro.Pipeline.Protocol;
using Synchro.Pipeline.Replication;
using Synchro.Pipeline.Decoding;
using Synchro.Pipeline.Runtime;

namespace Synchro.Pipeline;

public sealed partial class WalPipeline
{
    private SlotLock? _slotLock;
    private MessageHandlerSet? _messageHandlers;
    private OriginFilter? _skipOrigins;

    // Taken from the options at the first run (they are validated by then).
    private MessageHandlerSet? Handlers => _messageHandlers ??= MessageHandlerSet.Create(_options.MessageHandlers);

    // Invariant 10: the pipeline's own origins are always left out, with the ones the application names.
    private OriginFilter? Origins => _skipOrigins ??= OriginFilter.Create([.. _options.SkipOrigins, .. Changelog.OwnWritesOrigin.Names(_options.SlotName)]);

    /// <summary>
    /// Where the stream is asked to start. With message handlers, at the slot's own confirmed position (the server
    /// resends from there; the decoder skips the changes up to <paramref name="position"/>), because that position is
    /// advanced only after delivery while the persisted one may already be past an undelivered message.
    /// </summary>
    private Lsn StreamStart(Lsn position) => Handlers is null ? position : Lsn.Invalid;

    private void StartWatchers(StageGroup stages)
    {
        var loggers = _options.LoggerFactory;
        // On a standby the heartbeat is written on its primary, in the source database, and decoded here once replayed.
        if (_options.EffectiveHeartbeatInterval > TimeSpan.Zero && HeartbeatTarget is { } heartbeats)
            stages.StartWatcher(new HeartbeatEmitter(heartbeats, _options.EffectiveHeartbeatInterval, _position, loggers.CreateLogger(LogCategory + ".Committer")).RunAsync);
        if (_options.SlotHealthInterval > TimeSpan.Zero && _slotLock is { } slotLock)
        {
            var watch = new SlotHealthWatch(() => slotLock.Connection, _options.SlotName, _options.SlotHealthInterval, _options.SlotSafeWalSizeWarning, _metrics, _logger);
            stages.StartWatcher(watch.RunAsync);
        }
        if (_options.CompactionInterval is { } interval && interval > TimeSpan.Zero)
        {
            // Its own connection of the changelog data source, never the writer's session (which holds the changelog lock).
            var compaction = new ChangelogCompactionOptions { DeleteRetention = _options.DeleteRetention, Schema = _options.ChangelogSchemaName };
            var compactor = new ChangelogCompactor(_changelog, compaction, loggers, _metrics.Compaction);
            stages.StartWatcher(new ScheduledCompaction(compactor, interval, loggers.CreateLogger(ChangelogCompactor.LogCategory)).RunAsync);
        }
    }
}
