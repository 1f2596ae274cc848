namespace Synchro.Pipeline.Decoding.Items;

/// <summary>What a two-phase message asks of the writer.</summary>
internal enum PreparedStepKind : byte
{
    /// <summary>The transaction's chunks (sent before) are complete: commit them with the position past the PREPARE.</summary>
    Prepare,

    /// <summary>Write the stored changes to the changelog as a transaction committed here, and delete them.</summary>
    CommitPrepared,

    /// <summary>Delete the stored changes.</summary>
    RollbackPrepared,

    /// <summary>The operator asked to skip this transaction: keep the stored changes as rule failures, not in the changelog.</summary>
    SkipCommitPrepared,
}

/// <summary>A two-phase step, applied in a changelog transaction of its own that persists <see cref="EndLsn"/>.</summary>
internal sealed class PreparedStep(PreparedStepKind kind, string gid, Protocol.Lsn endLsn, DateTime commitTime = default) : DecodedItem
{
    public PreparedStepKind Kind { get; } = kind;

    /// <summary>The prepared transaction's global identifier.</summary>
    public string Gid { get; } = gid;

    /// <summary>The position past the step's message.</summary>
    public Protocol.Lsn EndLsn { get; } = endLsn;

    /// <summary>For <see cref="PreparedStepKind.CommitPrepared"/>: the source commit time; default otherwise.</summary>
    public DateTime CommitTime { get; } = commitTime;

    /// <summary>For a commit: the transaction's id and the LSN of its COMMIT PREPARED record.</summary>
    public uint Xid { get; init; }

    /// <inheritdoc cref="Xid"/>
    public Protocol.Lsn CommitLsn { get; init; }
}
