namespace Synchro.Pipeline.Reading;

/// <summary>Why a read asked the client to resync buckets.</summary>
public enum ResyncReason
{
    /// <summary>No resync is needed.</summary>
    None = 0,

    /// <summary>
    /// Compaction removed delete rows of the buckets after the cursor's position for them (the bucket's horizon in
    /// <c>sync_bucket_horizons</c> is above it): continuing could leave a deleted record in the client.
    /// </summary>
    HorizonPassed = 1,

    /// <summary>
    /// The cursor is ahead of the changelog's sequence: it was issued by another changelog, or by this one before it was
    /// restored from a backup. Every requested bucket must be loaded again.
    /// </summary>
    CursorAhead = 2,
}
