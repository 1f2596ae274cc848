namespace Synchro.Pipeline;

// Parent moves cascading to the children that inherit their buckets (Changelog/ParentMoveCascade).
public sealed partial class WalPipelineOptions
{
    /// <summary>
    /// When a change moves a record to other buckets, move the descendants that take their buckets from it through the
    /// parent chain too, in the same changelog transaction (docs/buckets.md, "When a parent moves"). Default true; false
    /// keeps the Go reference's behaviour: a child moves only when it changes itself.
    /// </summary>
    /// <remarks>
    /// Costs nothing for batches that move no record of a table with inheriting children; a move reads the descendants on
    /// the source, level by level, one cursor per child table per chunk of moved parents, under
    /// <see cref="ParentLookupTimeout"/> per fetch. The foreign-key columns of the children should be indexed.
    /// </remarks>
    public bool CascadeParentMoves { get; set; } = true;

    /// <summary>Descendants per fetch and moved parents per cursor of the cascade (tests set it small).</summary>
    internal int CascadeChunkRows { get; set; } = Changelog.ParentMoveCascade.DefaultChunkRows;
}
