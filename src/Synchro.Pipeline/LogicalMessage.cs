using Synchro.Pipeline.Protocol;

namespace Synchro.Pipeline;

/// <summary>A logical decoding message (<c>pg_logical_emit_message</c>) handed to a <see cref="WalPipelineOptions.MessageHandlers"/> handler.</summary>
/// <remarks>The instance and its <see cref="Content"/> belong to the handler; the pipeline keeps no reference after the call.</remarks>
public sealed class LogicalMessage
{
    internal LogicalMessage(string prefix, byte[] content, Lsn lsn, bool transactional)
    {
        Prefix = prefix;
        Content = content;
        Lsn = lsn;
        Transactional = transactional;
    }

    /// <summary>The prefix the message was emitted with (the handler's key).</summary>
    public string Prefix { get; }

    /// <summary>The message's content, as emitted (text is UTF-8 in the database's encoding).</summary>
    public ReadOnlyMemory<byte> Content { get; }

    /// <summary>The message's position in the WAL.</summary>
    public Lsn Lsn { get; }

    /// <summary>Which handler of the pipeline's set receives it.</summary>
    internal int Handler { get; init; }

    /// <summary>True when it was emitted as part of its (committed) transaction; false when emitted immediately, outside transactional order.</summary>
    public bool Transactional { get; }
}
