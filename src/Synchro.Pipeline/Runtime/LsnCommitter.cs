using System.Diagnostics;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Npgsql;
using Npgsql.Replication;
using Synchro.Pipeline.Changelog;
using Synchro.Pipeline.Diagnostics;
using Synchro.Pipeline.Protocol;

namespace Synchro.Pipeline.Runtime;

/// <summary>
/// Takes the writer's receipts, advances the <see cref="CommittedPosition"/>, and tells the server how far the
/// changelog is durable, so it can release WAL. Invariant 2 of docs/architecture.md: the LSN it reports is always a position the writer has
/// committed: the end of a source transaction, or a heartbeat's position once everything before it is committed.
/// </summary>
/// <remarks>
/// With <see cref="Standbys"/> (the failover confirm rule, docs/failover.md) a committed position is held until the standbys of
/// <c>synchronized_standby_slots</c> have flushed the changelog commit that recorded it; the committed position advances at once.
/// </remarks>
internal sealed partial class LsnCommitter(ChannelReader<CommitReceipt> committed, CommittedPosition position, ReplicationConnection connection, ILogger logger)
{
    // Polling the standbys while receipts are held: from a few milliseconds (a standby on the same network flushes within
    // them) doubling to a second, so a standby that is down costs one query a second.
    private static readonly TimeSpan s_firstPoll = TimeSpan.FromMilliseconds(5);
    private static readonly TimeSpan s_maxPoll = TimeSpan.FromSeconds(1);

    // A confirm held this long is reported, then again every StallRepeat while it lasts.
    private static readonly TimeSpan s_stallWarning = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan s_stallRepeat = TimeSpan.FromMinutes(1);

    // Receipts the failover rule holds, oldest first: the position, and the server's flushed WAL read after the receipt was
    // taken (at or past the changelog commit that recorded it), and when it was taken.
    private readonly Queue<(Lsn Position, Lsn Commit, long Taken)> _held = new();
    private TimeSpan _poll = s_firstPoll;
    private Task<bool>? _waiting;
    private bool _warnedEmpty;
    private long _lastStallWarning;
    // The traced commits taken and not yet confirmed, oldest first (empty when nobody listens: their contexts are default).
    private readonly List<CommitReceipt> _traced = [];

    /// <summary>The slot, for the confirm spans' tag.</summary>
    public string? Slot { get; init; }

    /// <summary>The failover confirm rule; null confirms every receipt as soon as it is taken.</summary>
    public StandbyFlushGate? Standbys { get; init; }

    /// <summary>Takes receipts until the writer completes them (it ends after the batch it is writing when the run stops).</summary>
    /// <param name="stopping">The run is ending: the stream is closing, so positions are only taken, and the stop-time confirm reports the last.</param>
    /// <param name="aborting">Gives up waiting for the writer (the stop's grace ran out).</param>
    public async Task RunAsync(CancellationToken stopping, CancellationToken aborting)
    {
        try
        {
            while (await WaitAsync(aborting).ConfigureAwait(false))
            {
                // The writer may have committed several batches meanwhile: report only the newest.
                var newest = TakeReceipts();
                if (stopping.IsCancellationRequested)
                {
                    // The stop-time confirm decides for what is held, under the same rule.
                    _held.Clear();
                    _traced.Clear();
                    continue;
                }
                var roundStarted = _traced.Count > 0 ? DateTimeOffset.UtcNow : default;
                if (Standbys is not null)
                    newest = await ReleaseAsync(Standbys, newest, aborting).ConfigureAwait(false);
                if (!newest.IsValid)
                    continue;
                using var activity = StartConfirm(newest, roundStarted);
                connection.SetReplicationStatus(newest);
                try
                {
                    await connection.SendStatusUpdate(aborting).ConfigureAwait(false);
                }
                catch (Exception e) when (stopping.IsCancellationRequested && e is OperationCanceledException or InvalidOperationException or NpgsqlException)
                {
                    // The stream ended under it for the stop.
                    continue;
                }
                catch (Exception e)
                {
                    activity.Failed(e);
                    throw;
                }
                LogConfirmed(logger, newest);
            }
        }
        finally
        {
            // Receipts of commits made before the stop still count (the stop-time confirm reads the position).
            TakeReceipts();
        }
    }

    /// <summary>Waits for receipts; while the failover rule holds some, returns after the poll interval too. False once the writer ended.</summary>
    private async Task<bool> WaitAsync(CancellationToken aborting)
    {
        _waiting ??= committed.WaitToReadAsync(aborting).AsTask();
        if (_held.Count > 0 && await Task.WhenAny(_waiting, Task.Delay(_poll, aborting)).ConfigureAwait(false) != _waiting)
            return true;
        var more = await _waiting.ConfigureAwait(false);
        _waiting = null;
        return more;
    }

    private Lsn TakeReceipts()
    {
        var newest = Lsn.Invalid;
        while (committed.TryRead(out var receipt))
        {
            newest = Lsn.Max(newest, receipt.Position);
            if (receipt.Trace != default)
                _traced.Add(receipt);
        }
        position.Advance(newest);
        return newest;
    }

    /// <summary>
    /// The span of telling the server <paramref name="confirmed"/>: a child of the newest traced commit it covers, linked to
    /// the others; null when it covers none (a heartbeat's position) or nobody listens.
    /// </summary>
    private Activity? StartConfirm(Lsn confirmed, DateTimeOffset started)
    {
        var covered = 0;
        while (covered < _traced.Count && _traced[covered].Position <= confirmed)
            covered++;
        if (covered == 0)
            return null;
        List<ActivityLink>? links = null;
        for (var i = 0; i < covered - 1; i++)
            (links ??= []).Add(new ActivityLink(_traced[i].Trace));
        var parent = _traced[covered - 1].Trace;
        _traced.RemoveRange(0, covered);
        var activity = PipelineTracing.Start(PipelineTracing.Confirm, parent, links, started);
        if (activity is { IsAllDataRequested: true })
        {
            activity.SetTag(PipelineTracing.SlotTag, Slot);
            activity.SetTag(PipelineTracing.ConfirmedLsnTag, confirmed.ToString());
            activity.SetTag(PipelineTracing.CommitsTag, covered);
        }
        return activity;
    }

    /// <summary>
    /// Holds <paramref name="newest"/> (when valid) with the server's flushed WAL, and returns the newest held position whose
    /// commit every standby of <c>synchronized_standby_slots</c> has flushed; <see cref="Lsn.Invalid"/> when none has.
    /// </summary>
    private async Task<Lsn> ReleaseAsync(StandbyFlushGate standbys, Lsn newest, CancellationToken cancellationToken)
    {
        var flush = await standbys.ReadAsync(cancellationToken).ConfigureAwait(false);
        var now = Stopwatch.GetTimestamp();
        if (newest.IsValid)
            _held.Enqueue((newest, flush.Flushed, now));
        var release = Lsn.Invalid;
        if (flush.Slots.Count == 0)
        {
            // No standby is named: nothing to wait for, and nothing protected (docs/failover.md).
            if (!_warnedEmpty)
                LogNoStandbySlots(logger);
            _warnedEmpty = true;
            while (_held.TryDequeue(out var held))
                release = held.Position;
            return release;
        }
        while (_held.TryPeek(out var held) && flush.StandbysFlushed.IsValid && held.Commit <= flush.StandbysFlushed)
        {
            release = held.Position;
            _held.Dequeue();
        }
        _poll = release.IsValid ? s_firstPoll : TimeSpan.FromTicks(Math.Min(_poll.Ticks * 2, s_maxPoll.Ticks));
        if (_held.TryPeek(out var oldest)
            && Stopwatch.GetElapsedTime(oldest.Taken, now) > s_stallWarning
            && (_lastStallWarning == 0 || Stopwatch.GetElapsedTime(_lastStallWarning, now) > s_stallRepeat))
        {
            _lastStallWarning = now;
            LogHeldForStandbys(logger, oldest.Position, Stopwatch.GetElapsedTime(oldest.Taken, now).TotalSeconds, oldest.Commit, flush.Behind);
        }
        return release;
    }

    [LoggerMessage(EventId = Diagnostics.EventIds.PositionConfirmed, Level = LogLevel.Debug, Message = "Confirmed position {Position} to the server")]
    private static partial void LogConfirmed(ILogger logger, Lsn position);

    [LoggerMessage(EventId = Diagnostics.EventIds.FailoverNoStandbySlots, Level = LogLevel.Warning,
        Message = "Failover is on but the primary's synchronized_standby_slots is empty: positions are confirmed without waiting for any standby, so a standby "
            + "that syncs the slot and is promoted can resume past changes whose changelog rows it never received. Name the physical slot of every standby "
            + "that may be promoted: ALTER SYSTEM SET synchronized_standby_slots = '<slot>'; SELECT pg_reload_conf(); (docs/failover.md)")]
    private static partial void LogNoStandbySlots(ILogger logger);

    [LoggerMessage(EventId = Diagnostics.EventIds.FailoverConfirmHeld, Level = LogLevel.Warning,
        Message = "Position {Position} has waited {Seconds:F0} s to be confirmed: its changelog commit (WAL {Commit}) has not been flushed by every standby of "
            + "synchronized_standby_slots ({Behind}). The slot keeps the WAL after its confirmed position meanwhile, and the server also holds the stream back "
            + "for those standbys. Bring the standby back, or remove its slot from synchronized_standby_slots if it is gone for good (docs/failover.md)")]
    private static partial void LogHeldForStandbys(ILogger logger, Lsn position, double seconds, Lsn commit, string behind);
}
