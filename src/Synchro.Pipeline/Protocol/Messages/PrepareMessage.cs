namespace Synchro.Pipeline.Protocol.Messages;

/// <summary>
/// The two-phase messages Begin Prepare (<c>b</c>), Prepare (<c>P</c>) and Stream Prepare (<c>p</c>),
/// which share one layout (Begin Prepare has no flags byte).
/// </summary>
internal readonly ref struct PrepareMessage(byte flags, Lsn prepareLsn, Lsn endLsn, long prepareTimestamp, uint xid, ReadOnlySpan<byte> gid)
{
    public byte Flags { get; } = flags;

    public Lsn PrepareLsn { get; } = prepareLsn;

    public Lsn EndLsn { get; } = endLsn;

    public long PrepareTimestamp { get; } = prepareTimestamp;

    public uint Xid { get; } = xid;

    /// <summary>The prepared transaction's global identifier.</summary>
    public ReadOnlySpan<byte> Gid { get; } = gid;
}
