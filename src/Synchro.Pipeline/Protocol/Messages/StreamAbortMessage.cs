namespace Synchro.Pipeline.Protocol.Messages;

/// <summary>Stream Abort (<c>A</c>): a streamed (sub)transaction rolled back; its streamed changes never happened.</summary>
internal readonly struct StreamAbortMessage(uint xid, uint subXid, Lsn abortLsn, long abortTimestamp)
{
    /// <summary>The top-level transaction.</summary>
    public uint Xid { get; } = xid;

    /// <summary>The aborted subtransaction; equal to <see cref="Xid"/> when the whole transaction aborted.</summary>
    public uint SubXid { get; } = subXid;

    /// <summary>Protocol 4 with parallel streaming only; otherwise <see cref="Lsn.Invalid"/>.</summary>
    public Lsn AbortLsn { get; } = abortLsn;

    /// <summary>Protocol 4 with parallel streaming only; otherwise 0.</summary>
    public long AbortTimestamp { get; } = abortTimestamp;

    public bool IsWholeTransaction => Xid == SubXid;
}
