namespace Synchro.Pipeline.Changelog;

/// <summary>A record of a registered table: its schema-qualified table name and the text form of its id.</summary>
/// <remarks>Equality is ordinal on both parts, as PostgreSQL compares the <c>text</c> keys of <c>sync_bucket_edges</c>.</remarks>
internal readonly record struct RecordKey(string TableName, string RecordId);
