namespace Synchro.Pipeline;

/// <summary>
/// What happened to a record, as stored in the <c>operation</c> column (SMALLINT) of
/// <c>sync_changelog</c> and <c>sync_rule_failures</c>.
/// </summary>
/// <remarks>The numeric codes are the synchro reference's and are part of the data contract.</remarks>
public enum ChangeOperation : short
{
    /// <summary>The record entered the bucket (code 1).</summary>
    Insert = 1,

    /// <summary>The record changed and stays in the bucket (code 2).</summary>
    Update = 2,

    /// <summary>The record was deleted or soft-deleted, or left the bucket (code 3).</summary>
    Delete = 3,
}
