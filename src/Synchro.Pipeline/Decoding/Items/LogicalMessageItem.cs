namespace Synchro.Pipeline.Decoding.Items;

/// <summary>
/// A logical decoding message for an application handler. It comes before the item whose commit covers it, and the
/// writer delivers it after that commit, so neither the server nor a clean stop confirms past an undelivered message.
/// </summary>
internal sealed class LogicalMessageItem(LogicalMessage message) : DecodedItem
{
    public LogicalMessage Message { get; } = message;
}
