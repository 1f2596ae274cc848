using Synchro.Pipeline.Changelog;
using Synchro.Pipeline.Pipeline;
using Synchro.Pipeline.Registry;

namespace Synchro.Pipeline.Buckets;

/// <summary>One change waiting for its buckets.</summary>
public sealed class BucketAssignment
{
    /// <summary>The <c>global</c> bucket: records every client receives.</summary>
    public const string GlobalBucket = "global";

    private readonly DecodedChange _change;

    internal BucketAssignment(DecodedChange change) => _change = change;

    /// <summary>The changed record's table.</summary>
    public TableRegistration Table => _change.Table;

    /// <summary>The text form of the record's id.</summary>
    public string RecordId => _change.RecordId;

    /// <summary>What happened to the record.</summary>
    public ChangeOperation Operation => _change.Operation;

    /// <summary>The bucket ids the record belongs to after the change; assigners add to it.</summary>
    // A List, so the writer reads it as IReadOnlyList without copying.
    public IList<string> Buckets { get; } = new List<string>(1);

    /// <summary>The record keeps the buckets it is in (its bucket column arrived as an unchanged TOAST value).</summary>
    public bool KeepExistingBuckets { get; set; }

    /// <summary>Why the rule failed, when it did; the change then writes a rule failure and no changelog rows.</summary>
    public string? Failure { get; private set; }

    /// <summary>Whether an assigner has decided this change (buckets, keep, or failure).</summary>
    public bool IsDecided => Buckets.Count > 0 || KeepExistingBuckets || Failure is not null || _decidedEmpty;

    private bool _decidedEmpty;

    /// <summary>The text of a registered column's value in the changed row (the old row for a delete), or null for SQL NULL.</summary>
    /// <exception cref="ArgumentException">The column is not one the registration references.</exception>
    public string? GetValue(string column)
    {
        var index = Table.ReferencedColumnIndex(column);
        if (index < 0)
            throw new ArgumentException($"Column '{column}' is not referenced by the registration of {Table}; only {string.Join(", ", Table.ReferencedColumns)} are decoded.", nameof(column));
        var value = _change.Values[index];
        return ReferenceEquals(value, DecodedChange.UnchangedToast) ? null : value;
    }

    /// <summary>Whether the column's value was left out of the change because it is TOASTed and did not change.</summary>
    public bool IsUnchanged(string column)
    {
        var index = Table.ReferencedColumnIndex(column);
        return index >= 0 && ReferenceEquals(_change.Values[index], DecodedChange.UnchangedToast);
    }

    /// <summary>Decides that the record belongs to no bucket.</summary>
    public void AssignNone() => _decidedEmpty = true;

    /// <summary>Records that the rule failed for this change.</summary>
    public void Fail(string reason)
    {
        ArgumentException.ThrowIfNullOrEmpty(reason);
        Failure = reason;
    }

    internal DecodedChange Change => _change;
}
