namespace Synchro.Pipeline.Protocol.Messages;

/// <summary>Commit (<c>C</c>), also the layout of Stream Commit (<c>c</c>) after its Xid.</summary>
internal readonly struct CommitMessage(uint xid, byte flags, Lsn commitLsn, Lsn endLsn, long commitTimestamp)
{
    /// <summary>The transaction id; only Stream Commit carries one (0 for Commit).</summary>
    public uint Xid { get; } = xid;

    public byte Flags { get; } = flags;

    /// <summary>The LSN of the commit record.</summary>
    public Lsn CommitLsn { get; } = commitLsn;

    /// <summary>The end of the commit record: the position to confirm once the transaction is applied.</summary>
    public Lsn EndLsn { get; } = endLsn;

    public long CommitTimestamp { get; } = commitTimestamp;

    public DateTime CommitTime => PgTimestamp.ToDateTime(CommitTimestamp);
}
