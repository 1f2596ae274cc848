namespace Synchro.Pipeline.Changelog;

/// <summary>
/// A change whose bucket rule failed, kept in <c>sync_rule_failures</c> for replay.
/// </summary>
/// <param name="TableName">The schema-qualified table of the changed row.</param>
/// <param name="RecordId">The text form of the row's id.</param>
/// <param name="Operation">The change's operation.</param>
/// <param name="ErrorText">Why the rule failed (stored cut at <see cref="ChangelogStore.MaxErrorTextChars"/>).</param>
/// <param name="PayloadJson">The row as a JSON document that <c>jsonb</c> holds (<see cref="Buckets.RowJson.Payload"/>), or null when there is none.</param>
internal sealed record RuleFailure(string TableName, string RecordId, ChangeOperation Operation, string ErrorText, string? PayloadJson);
