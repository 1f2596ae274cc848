using Microsoft.Extensions.Logging;
using Synchro.Pipeline.Protocol.Messages;

namespace Synchro.Pipeline.Decoding;

internal sealed partial class ChangeDecoder
{
    // Set by OnOrigin: the current transaction is skipped for its origin, but still ends a batch's position.
    private bool _skippedByOrigin;

    /// <summary>Handlers for logical decoding messages by prefix; null when the application has none.</summary>
    public MessageHandlerSet? MessageHandlers { get; init; }

    /// <summary>Origins whose transactions are skipped; null when none.</summary>
    public OriginFilter? SkipOrigins { get; init; }

    private bool HasMessagesOutsideTransaction => !_inTransaction && _batch.Messages is { Count: > 0 };

    // Streamed or prepared transactions skipped for their origin (the Origin message comes in their first block).
    private readonly HashSet<uint> _skippedSpills = [];

    internal void OnOrigin(in OriginMessage message)
    {
        if (SkipOrigins is { } skip && Spilling && skip.Contains(message.Name))
        {
            _skippedSpills.Add(_spillXid);
            return;
        }
        if (SkipOrigins is { } origins && _inTransaction && !_skipTransaction && origins.Contains(message.Name))
        {
            _skipTransaction = true;
            _skippedByOrigin = true;
        }
    }

    /// <summary>Keeps a message that has a handler for delivery by the writer once its batch is committed.</summary>
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
        (_batch.Messages ??= []).Add(new LogicalMessage(handlers.Prefix(handler), message.Content.ToArray(), message.Lsn, message.Transactional) { Handler = handler });
        _batch.Bytes += message.Content.Length;
        // Invariant: a batch's position never falls behind the resume position (a batch of only redelivered messages keeps it).
        if (_batch.EndLsn < _resumeAfter)
            _batch.EndLsn = _resumeAfter;
        // Outside a transaction everything before the message was handled, so its position may be persisted.
        if (!_inTransaction && !message.Transactional && message.Lsn > _batch.EndLsn)
            _batch.EndLsn = message.Lsn;
    }

    [LoggerMessage(EventId = Diagnostics.EventIds.SpilledMessageNotDelivered, Level = LogLevel.Warning,
        Message = "A transactional logical message with prefix {Prefix} at {Lsn} belongs to a transaction the server streamed before its commit (or a prepared one); "
            + "such messages are not delivered to handlers. Raise logical_decoding_work_mem above the size of transactions that carry messages, or send them non-transactionally.")]
    private static partial void LogSpilledMessageNotDelivered(ILogger logger, string prefix, Protocol.Lsn lsn);
}
