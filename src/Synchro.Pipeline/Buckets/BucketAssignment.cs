using Synchro.Pipeline.Protocol;
using Synchro.Pipeline.Registry;
using Synchro.Pipeline.Decoding;

namespace Synchro.Pipeline.Buckets;

/// <summary>One change waiting for its buckets.</summary>
/// <remarks>Its column values can be read only while <see cref="IBucketAssigner.AssignAsync"/> runs: they live in the writer's batch, which is reused afterwards.</remarks>
public sealed class BucketAssignment
{
    /// <summary>The <c>global</c> bucket: records every client receives.</summary>
    public const string GlobalBucket = "global";

    private ChangeBatch _batch;
    private DecodedChange _change;
    // The batch's generation when this was made; a released batch has moved on.
    private int _generation;

    internal BucketAssignment(ChangeBatch batch, int index, string recordId)
    {
        _batch = batch;
        _change = batch[index];
        _generation = batch.Generation;
        RecordId = recordId;
    }

    /// <summary>Makes this the assignment of another change: the writer reuses assignments from batch to batch.</summary>
    internal void Reset(ChangeBatch batch, int index, string recordId)
    {
        _batch = batch;
        _change = batch[index];
        _generation = batch.Generation;
        RecordId = recordId;
        Buckets.Clear();
        KeepExistingBuckets = false;
        Failure = null;
        _decidedEmpty = false;
    }

    /// <summary>The changed record's table.</summary>
    public TableRegistration Table => _change.Table;

    /// <summary>The text form of the record's id.</summary>
    public string RecordId { get; private set; }

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

    /// <summary>
    /// The text of a column's value in the changed row (the old row for a delete), or null for SQL NULL and an unchanged
    /// TOAST value: any column of a table with a SQL function rule (whose changes carry the whole row), else a column
    /// the registration references.
    /// </summary>
    /// <exception cref="ArgumentException">The change does not carry the column.</exception>
    public string? GetValue(string column)
    {
        var index = Table.ReferencedColumnIndex(column);
        if (index >= 0)
            return Batch.GetString(_change, index);
        if (_change.RowValue >= 0 && _change.Layout!.IndexOf(column) is var position and >= 0)
        {
            var batch = Batch;
            var value = batch.Value(_change.RowValue + position);
            return value.Kind == TupleValueKind.Text ? System.Text.Encoding.UTF8.GetString(batch.Text(value)) : null;
        }
        throw new ArgumentException($"Column '{column}' is not referenced by the registration of {Table}; only {string.Join(", ", Table.ReferencedColumns)} are decoded.", nameof(column));
    }

    /// <summary>The change as the decoder stored it, for the built-in assigners.</summary>
    internal DecodedChange Change => _change;

    /// <summary>The batch holding the change's values (throws once it moved on).</summary>
    internal ChangeBatch Values => Batch;

    /// <summary>The UTF-8 text of a referenced column's value; false for SQL NULL and an unchanged TOAST value.</summary>
    internal bool TryGetText(string column, out ReadOnlySpan<byte> text)
    {
        var batch = Batch;
        var value = batch.Value(_change, Table.ReferencedColumnIndex(column));
        text = batch.Text(value);
        return value.Kind == TupleValueKind.Text;
    }

    /// <summary>Whether the column's value was left out of the change because it is TOASTed and did not change.</summary>
    public bool IsUnchanged(string column)
    {
        var index = Table.ReferencedColumnIndex(column);
        return index >= 0 && Batch.Value(_change, index).Kind == TupleValueKind.UnchangedToast;
    }

    /// <summary>Decides that the record belongs to no bucket.</summary>
    public void AssignNone() => _decidedEmpty = true;

    /// <summary>Records that the rule failed for this change.</summary>
    public void Fail(string reason)
    {
        ArgumentException.ThrowIfNullOrEmpty(reason);
        Failure = reason;
    }

    private ChangeBatch Batch => _batch.Generation == _generation
        ? _batch
        : throw new InvalidOperationException("The change's values are gone: a bucket assignment's values can be read only while the assigner runs.");
}
