namespace Synchro.Pipeline.Protocol.Messages;

/// <summary>Origin (<c>O</c>): the transaction was replicated from the named origin.</summary>
internal readonly ref struct OriginMessage(Lsn originCommitLsn, ReadOnlySpan<byte> name)
{
    /// <summary>The commit LSN on the origin server.</summary>
    public Lsn OriginCommitLsn { get; } = originCommitLsn;

    /// <summary>The origin's name (UTF-8).</summary>
    public ReadOnlySpan<byte> Name { get; } = name;
}
