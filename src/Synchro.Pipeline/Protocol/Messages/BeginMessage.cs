namespace Synchro.Pipeline.Protocol.Messages;

/// <summary>Begin (<c>B</c>): a committed transaction's changes follow.</summary>
internal readonly struct BeginMessage(Lsn finalLsn, long commitTimestamp, uint xid)
{
    /// <summary>The LSN of the transaction's commit record.</summary>
    public Lsn FinalLsn { get; } = finalLsn;

    /// <summary>Microseconds since 2000-01-01 UTC.</summary>
    public long CommitTimestamp { get; } = commitTimestamp;

    public DateTime CommitTime => PgTimestamp.ToDateTime(CommitTimestamp);

    public uint Xid { get; } = xid;
}
