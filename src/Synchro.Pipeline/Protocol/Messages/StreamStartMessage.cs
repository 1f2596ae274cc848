namespace Synchro.Pipeline.Protocol.Messages;

/// <summary>Stream Start (<c>S</c>): a block of an in-progress transaction's changes follows.</summary>
internal readonly struct StreamStartMessage(uint xid, bool isFirstSegment)
{
    public uint Xid { get; } = xid;

    /// <summary>This is the transaction's first streamed block.</summary>
    public bool IsFirstSegment { get; } = isFirstSegment;
}
