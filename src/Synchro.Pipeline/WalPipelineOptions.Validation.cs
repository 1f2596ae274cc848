using Synchro.Pipeline.Decoding;
namespace Synchro.Pipeline;

public sealed partial class WalPipelineOptions
{
    /// <summary>The heartbeat period in effect; <see cref="TimeSpan.Zero"/> when heartbeats are off.</summary>
    internal TimeSpan EffectiveHeartbeatInterval => HeartbeatInterval ?? StatusInterval;

    private void FindHeartbeatSlotAndMessageProblems(List<string> problems)
    {
        if (HeartbeatInterval is { } heartbeat && heartbeat != TimeSpan.Zero && (heartbeat < TimeSpan.FromMilliseconds(100) || heartbeat > TimeSpan.FromHours(1)))
            problems.Add($"{nameof(HeartbeatInterval)} is {heartbeat}; it must be 0 (off) or between 100 ms and 1 hour");
        if (SlotHealthInterval != TimeSpan.Zero && (SlotHealthInterval < TimeSpan.FromMilliseconds(100) || SlotHealthInterval > TimeSpan.FromHours(1)))
            problems.Add($"{nameof(SlotHealthInterval)} is {SlotHealthInterval}; it must be 0 (off) or between 100 ms and 1 hour");
        if (SlotWaitTimeout < TimeSpan.Zero || SlotWaitTimeout > TimeSpan.FromHours(1))
            problems.Add($"{nameof(SlotWaitTimeout)} is {SlotWaitTimeout}; it must be between 0 (no wait) and 1 hour");
        if (SlotSafeWalSizeWarning is < 0)
            problems.Add($"{nameof(SlotSafeWalSizeWarning)} is {SlotSafeWalSizeWarning}; it must be 0 or more bytes");
        foreach (var origin in SkipOrigins)
        {
            // Origin names are at most NAMEDATALEN-1 (63) bytes; they are compared as bytes, never put into SQL.
            if (string.IsNullOrEmpty(origin) || System.Text.Encoding.UTF8.GetByteCount(origin) > 63 || origin.Contains('\0', StringComparison.Ordinal))
                problems.Add($"{nameof(SkipOrigins)} contains '{origin}', which is not a replication origin name: use 1 to 63 bytes, no NUL");
        }
        foreach (var (prefix, handler) in MessageHandlers)
        {
            if (string.IsNullOrEmpty(prefix) || prefix.Contains('\0', StringComparison.Ordinal))
                problems.Add($"{nameof(MessageHandlers)} has a handler for an empty or NUL-containing prefix; a message prefix is non-empty text");
            else if (prefix == HeartbeatMessage.Prefix)
                problems.Add($"{nameof(MessageHandlers)} has a handler for '{HeartbeatMessage.Prefix}', the pipeline's own heartbeat prefix; use another prefix");
            if (handler is null)
                problems.Add($"{nameof(MessageHandlers)}['{prefix}'] is null; give a handler or remove the entry");
        }
    }
}
