using Synchro.Pipeline.Protocol;

namespace Synchro.Pipeline.Decoding.Items;

/// <summary>
/// Everything in the stream before <see cref="Position"/> is handled and nothing is pending: the position may be
/// persisted and confirmed. Sent for the pipeline's heartbeat message, and for messages outside any transaction.
/// </summary>
internal sealed class Heartbeat(Lsn position) : DecodedItem
{
    public Lsn Position { get; } = position;
}
