using Synchro.Pipeline.Decoding;

namespace Synchro.Pipeline.Changelog;

internal sealed partial class WriterStage
{
    // Messages of the database transaction being written (all its chunks), delivered once it commits.
    private readonly List<LogicalMessage> _messages = [];

    /// <summary>Handlers for logical decoding messages; null when the application has none.</summary>
    public MessageHandlerSet? MessageHandlers { get; init; }

    /// <summary>
    /// Delivers the committed transaction's messages in stream order. Runs before the committed position reaches the
    /// metrics and the committer, so neither the server nor a clean stop confirms past an undelivered message.
    /// </summary>
    private async ValueTask DeliverMessagesAsync(CancellationToken cancellationToken)
    {
        if (_messages.Count == 0 || MessageHandlers is not { } handlers)
            return;
        try
        {
            foreach (var message in _messages)
                await handlers.DeliverAsync(message, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _messages.Clear();
        }
    }
}
