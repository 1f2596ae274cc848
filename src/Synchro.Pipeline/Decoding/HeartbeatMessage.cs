namespace Synchro.Pipeline.Decoding;

/// <summary>
/// The pipeline's own heartbeat: a non-transactional logical decoding message with this prefix, written into the
/// source WAL when nothing was committed for a while. The decoder turns one into a heartbeat item once
/// everything before it is handled, so an idle slot still advances.
/// </summary>
internal static class HeartbeatMessage
{
    public const string Prefix = "synchro.heartbeat";

    public static ReadOnlySpan<byte> PrefixUtf8 => "synchro.heartbeat"u8;
}
