namespace Synchro.Pipeline.Protocol.Messages;

/// <summary>Commit Prepared (<c>K</c>): a prepared transaction committed.</summary>
internal readonly ref struct CommitPreparedMessage(byte flags, Lsn commitLsn, Lsn endLsn, long commitTimestamp, uint xid, ReadOnlySpan<byte> gid)
{
    public byte Flags { get; } = flags;

    public Lsn CommitLsn { get; } = commitLsn;

    public Lsn EndLsn { get; } = endLsn;

    public long CommitTimestamp { get; } = commitTimestamp;

    public uint Xid { get; } = xid;

    public ReadOnlySpan<byte> Gid { get; } = gid;
}
