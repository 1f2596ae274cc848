using System.Text;

namespace Synchro.Pipeline.Decoding;

/// <summary>The application's logical-message handlers, matched by the prefix's UTF-8 bytes so unmatched messages cost no allocation.</summary>
internal sealed class MessageHandlerSet
{
    private readonly byte[][] _prefixBytes;
    private readonly string[] _prefixes;
    private readonly Func<LogicalMessage, CancellationToken, ValueTask>[] _handlers;

    private MessageHandlerSet(IDictionary<string, Func<LogicalMessage, CancellationToken, ValueTask>> handlers)
    {
        _prefixes = [.. handlers.Keys];
        _prefixBytes = [.. _prefixes.Select(Encoding.UTF8.GetBytes)];
        _handlers = [.. _prefixes.Select(p => handlers[p])];
    }

    /// <summary>The set, or null when there is no handler.</summary>
    public static MessageHandlerSet? Create(IDictionary<string, Func<LogicalMessage, CancellationToken, ValueTask>> handlers)
        => handlers.Count == 0 ? null : new MessageHandlerSet(handlers);

    /// <summary>The index of the handler for <paramref name="prefix"/>, or -1.</summary>
    public int Find(ReadOnlySpan<byte> prefix)
    {
        // A handful of prefixes: a linear scan beats hashing the span.
        for (var i = 0; i < _prefixBytes.Length; i++)
        {
            if (prefix.SequenceEqual(_prefixBytes[i]))
                return i;
        }
        return -1;
    }

    public string Prefix(int handler) => _prefixes[handler];

    /// <summary>Calls the message's handler; its failure stops the pipeline (the message is delivered again after a restart).</summary>
    public async ValueTask DeliverAsync(LogicalMessage message, CancellationToken cancellationToken)
    {
        try
        {
            await _handlers[message.Handler](message, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            throw new WalPipelineException(
                $"The handler for logical messages with prefix '{message.Prefix}' failed on the message at {message.Lsn}: {e.Message} "
                + "The pipeline stops; fix the handler and restart, and the message is delivered again.", e);
        }
    }
}

/// <summary>Replication origin names (UTF-8) whose transactions the decoder skips.</summary>
internal sealed class OriginFilter
{
    private readonly byte[][] _names;

    private OriginFilter(IEnumerable<string> names) => _names = [.. names.Select(Encoding.UTF8.GetBytes)];

    /// <summary>The filter, or null when no origin is skipped.</summary>
    public static OriginFilter? Create(ICollection<string> names) => names.Count == 0 ? null : new OriginFilter(names);

    public bool Contains(ReadOnlySpan<byte> name)
    {
        foreach (var candidate in _names)
        {
            if (name.SequenceEqual(candidate))
                return true;
        }
        return false;
    }
}
