namespace Synchro.Pipeline.Reading;

/// <summary>What a <see cref="ChangelogReader.ReadAsync"/> call returned.</summary>
public enum ChangelogReadStatus
{
    /// <summary>Rows after the cursor (possibly none) and the cursor to continue from.</summary>
    Ok = 0,

    /// <summary>
    /// Some buckets (<see cref="ChangelogPage.ResyncBuckets"/>) cannot be continued from the cursor: the client must load
    /// them again from <see cref="ChangelogReader.ReadSnapshotAsync"/>. The page holds no rows and its
    /// <see cref="ChangelogPage.Next"/> is the cursor that was passed.
    /// </summary>
    ResyncRequired = 1,
}
