namespace Synchro.Pipeline.Decoding.Items;

/// <summary>
/// What the decoder hands the writer, in stream order; each kind of item is a type of its own.
/// </summary>
/// <remarks>
/// The kinds: <see cref="ChangeBatch"/> (changes of whole transactions, or a chunk of one), <see cref="TruncateItem"/>,
/// <see cref="PreparedChunk"/> and <see cref="PreparedStep"/> (two-phase), <see cref="LogicalMessageItem"/>,
/// <see cref="Heartbeat"/> and <see cref="DecoderFailure"/>. Invariant: the items that end a changelog transaction
/// (a batch that ends a source transaction, a prepared step, a heartbeat) name the position to persist with it, and
/// those positions never decrease along the channel.
/// </remarks>
internal abstract class DecodedItem
{
    private protected DecodedItem()
    {
    }
}
