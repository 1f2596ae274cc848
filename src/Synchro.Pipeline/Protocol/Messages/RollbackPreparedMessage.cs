namespace Synchro.Pipeline.Protocol.Messages;

/// <summary>Rollback Prepared (<c>r</c>): a prepared transaction was rolled back.</summary>
internal readonly ref struct RollbackPreparedMessage(byte flags, Lsn prepareEndLsn, Lsn rollbackEndLsn, long prepareTimestamp, long rollbackTimestamp, uint xid, ReadOnlySpan<byte> gid)
{
    public byte Flags { get; } = flags;

    public Lsn PrepareEndLsn { get; } = prepareEndLsn;

    public Lsn RollbackEndLsn { get; } = rollbackEndLsn;

    public long PrepareTimestamp { get; } = prepareTimestamp;

    public long RollbackTimestamp { get; } = rollbackTimestamp;

    public uint Xid { get; } = xid;

    public ReadOnlySpan<byte> Gid { get; } = gid;
}
