namespace Synchro.Pipeline.Changelog;

/// <summary>One <c>sync_changelog</c> row; its <c>seq</c> and <c>created_at</c> are assigned by the server.</summary>
internal readonly record struct ChangelogRow(string BucketId, string TableName, string RecordId, ChangeOperation Operation);
