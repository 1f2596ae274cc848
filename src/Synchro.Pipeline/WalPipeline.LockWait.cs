using Synchro.Pipeline.Replication;

namespace Synchro.Pipeline;

// The slot and changelog locks, and an instance that waits for them (WalPipelineOptions.WaitForLock).
public sealed partial class WalPipeline
{
    private SlotLock NewSlotLock() => new(_connections, _sourceConnectionString, _options.SlotName, _options.SlotWaitTimeout, _logger)
    {
        WaitForLock = _options.WaitForLock,
        Waiting = WaitingForSlotLockAsync,
    };

    /// <summary>The slot lock, then the changelog lock (invariant 9: before anything is written, whatever the slot).</summary>
    private async Task EnsureLocksAsync(CancellationToken cancellationToken)
    {
        await _slotLock!.EnsureAsync(cancellationToken).ConfigureAwait(false);
        await _changelogLock!.EnsureAsync(cancellationToken).ConfigureAwait(false);
        _metrics.LocksHeld();
    }

    // Invariant: an instance waiting for the slot lock holds no changelog lock, so the instance that holds the slot can
    // take the changelog too (an active instance that lost its slot lock would otherwise keep the new holder waiting on it).
    private async ValueTask WaitingForSlotLockAsync(string holder, CancellationToken cancellationToken)
    {
        await _changelogLock!.ReleaseAsync().ConfigureAwait(false);
        _metrics.WaitingForLock(holder);
    }
}
