namespace Synchro.Pipeline.Protocol.Messages;

/// <summary>Message (<c>M</c>): written by <c>pg_logical_emit_message</c>.</summary>
internal readonly ref struct LogicalDecodingMessage(uint xid, bool transactional, Lsn lsn, ReadOnlySpan<byte> prefix, ReadOnlySpan<byte> content)
{
    public uint Xid { get; } = xid;

    /// <summary>Sent inside its transaction (true) or immediately, outside any (false).</summary>
    public bool Transactional { get; } = transactional;

    public Lsn Lsn { get; } = lsn;

    public ReadOnlySpan<byte> Prefix { get; } = prefix;

    public ReadOnlySpan<byte> Content { get; } = content;
}
