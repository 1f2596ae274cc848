namespace Synchro.Pipeline.Reading;

/// <summary>Why a read asked the client to resync buckets.</summary>
public enum ResyncReason
{
    /// <summary>No resync is needed.</summary>
    None = 0,

    /// <summary>
    /// The changelog no longer holds every change of the buckets after the cursor's position for them (their horizon in
    /// <c>sync_bucket_horizons</c> is above it): compaction removed delete rows there, or the pipeline loaded an initial
    /// snapshot (a new or recreated slot), whose edges come without changelog rows. Continuing could leave the client wrong.
    /// </summary>
    HorizonPassed = 1,

    /// <summary>
    /// The cursor is ahead of the changelog's sequence: it was issued by another changelog, or by this one before it was
    /// restored from a backup. Every requested bucket must be loaded again.
    /// </summary>
    CursorAhead = 2,
}
