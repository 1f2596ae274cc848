using Microsoft.Extensions.Logging;
using Synchro.Pipeline.Decoding.Items;
using Synchro.Pipeline.Protocol.Messages;

namespace Synchro.Pipeline.Decoding;

// Logical decoding messages (the application's, and the pipeline's own heartbeat) and replication origins.
internal sealed partial class ChangeDecoder
{
    // Messages with a handler, waiting for the commit that covers them: sent just before the item that carries it.
    private readonly List<LogicalMessage> _messages = [];

    // Set by OnOrigin: the current transaction is skipped for its origin, but still ends a batch's position.
    private bool _skippedByOrigin;

    // Streamed or prepared transactions skipped for their origin (the Origin message comes in their first block).
    private readonly HashSet<uint> _skippedSpills = [];

    /// <summary>Handlers for logical decoding messages by prefix; null when the application has none.</summary>
    public MessageHandlerSet? MessageHandlers { get; init; }

    /// <summary>Origins whose transactions are skipped; null when none.</summary>
    public OriginFilter? SkipOrigins { get; init; }

    private bool HasMessagesOutsideTransaction => !_inTransaction && _messages.Count > 0;

    internal void OnOrigin(in OriginMessage message)
    {
        if (SkipOrigins is not { } origins || !origins.Contains(message.Name))
            return;
        if (Spilling)
        {
            _skippedSpills.Add(_spillXid);
            return;
        }
        if (_inTransaction && !_skipTransaction)
        {
            _skipTransaction = true;
            _skippedByOrigin = true;
        }
    }

    internal void OnMessage(in LogicalDecodingMessage message)
    {
        if (MessageHandlers is { } handlers && handlers.Find(message.Prefix) is var handler and >= 0)
        {
            AddMessage(handlers, handler, message);
            return;
        }
        // A heartbeat outside any transaction, with nothing pending: everything before it is handled, so its
        // position may be persisted and confirmed.
        if (_failed || message.Transactional || _inTransaction || IsReadingBack || !message.Prefix.SequenceEqual(HeartbeatMessage.PrefixUtf8))
            return;
        if (_batch.Count > 0 || _batch.Transactions > 0 || message.Lsn < _resumeAfter)
            return;
        SendHeartbeat(message.Lsn);
    }

    /// <summary>Keeps a message that has a handler for delivery by the writer once the commit that covers it is made.</summary>
    /// <remarks>
    /// Messages of a transaction skipped because it lies before the resume position are kept too: the server resends
    /// from the position it was told, which the committer advances only after delivery, so they may never have been
    /// delivered (at least once). Messages of a transaction skipped for its origin are dropped with it.
    /// </remarks>
    private void AddMessage(MessageHandlerSet handlers, int handler, in LogicalDecodingMessage message)
    {
        if (message.Transactional && _skippedByOrigin)
            return;
        // The spill format carries changes only: a transactional message of a streamed or prepared transaction is not
        // delivered (said once per message, never silently). Set logical_decoding_work_mem above such transactions' size.
        if (message.Transactional && Spilling)
        {
            LogSpilledMessageNotDelivered(_logger, handlers.Prefix(handler), message.Lsn);
            return;
        }
        _messages.Add(new LogicalMessage(handlers.Prefix(handler), message.Content.ToArray(), message.Lsn, message.Transactional) { Handler = handler });
        HasContent();
        _batch.Bytes += message.Content.Length;
        // Outside a transaction everything before the message was handled, so its position may be persisted.
        if (!_inTransaction && !message.Transactional && message.Lsn > _batch.EndLsn)
            _batch.EndLsn = message.Lsn;
    }

    /// <summary>Sends the waiting messages; the next item that ends a changelog transaction covers them.</summary>
    private void SendMessages()
    {
        foreach (var message in _messages)
            _ready.Enqueue(new LogicalMessageItem(message));
        _messages.Clear();
    }

    [LoggerMessage(EventId = Diagnostics.EventIds.SpilledMessageNotDelivered, Level = LogLevel.Warning,
        Message = "A transactional logical message with prefix {Prefix} at {Lsn} belongs to a transaction the server streamed before its commit (or a prepared one); "
            + "such messages are not delivered to handlers. Raise logical_decoding_work_mem above the size of transactions that carry messages, or send them non-transactionally.")]
    private static partial void LogSpilledMessageNotDelivered(ILogger logger, string prefix, Protocol.Lsn lsn);
}
