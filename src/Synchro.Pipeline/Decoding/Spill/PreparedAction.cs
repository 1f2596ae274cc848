namespace Synchro.Pipeline.Decoding.Spill;

/// <summary>What a two-phase message asks of the writer.</summary>
internal enum PreparedActionKind : byte
{
    /// <summary>Store the prepared transaction's changes (<see cref="PreparedAction.SpillPath"/>) in <c>sync_prepared_transactions</c>.</summary>
    Prepare,

    /// <summary>Write the stored changes to the changelog, as a transaction committed here, and delete them.</summary>
    CommitPrepared,

    /// <summary>Delete the stored changes.</summary>
    RollbackPrepared,
}

/// <summary>
/// A two-phase step carried by a batch of its own (no changes), applied by the writer in the same database
/// transaction as the batch's position.
/// </summary>
/// <param name="Kind">The step.</param>
/// <param name="Gid">The prepared transaction's global identifier.</param>
/// <param name="SpillPath">For <see cref="PreparedActionKind.Prepare"/>: the spill file of its changes (null when none), which the writer deletes.</param>
/// <param name="Limits">How many changes a stored chunk, and a batch read back from it, holds at most.</param>
internal sealed record PreparedAction(PreparedActionKind Kind, string Gid, string? SpillPath, BatchLimits Limits);
