namespace Synchro.Pipeline.Changelog;

/// <summary>
/// The bucket edges of a batch's records as the batch's changes apply, one after another: each change
/// sees the edges left by the changes before it (the in-batch overlay), and the net difference from
/// the loaded state is written once at the end.
/// </summary>
internal sealed class EdgeOverlay
{
    private readonly Dictionary<RecordKey, List<string>> _loaded;
    private readonly Dictionary<RecordKey, List<string>> _current = [];

    /// <param name="loaded">The edges in the database before the batch (records without edges absent).</param>
    public EdgeOverlay(Dictionary<RecordKey, List<string>> loaded) => _loaded = loaded;

    /// <summary>The record's buckets now (after the earlier changes of the batch).</summary>
    public IReadOnlyList<string> Current(RecordKey record)
        => _current.TryGetValue(record, out var current) ? current : _loaded.TryGetValue(record, out var loaded) ? loaded : [];

    /// <summary>
    /// Applies one change (the reference's edge diff) and appends its changelog rows:
    /// a delete emits a delete in every current bucket (or in <paramref name="desired"/> when there is
    /// none) and leaves no edge; an insert or update emits, per desired bucket, an update where the
    /// record already is and an insert where it is new, then a delete in every bucket it leaves.
    /// </summary>
    public void Apply(RecordKey record, ChangeOperation operation, IReadOnlyList<string> desired, List<ChangelogRow> rows)
    {
        var existing = Current(record);
        if (operation == ChangeOperation.Delete)
        {
            foreach (var bucket in existing.Count > 0 ? existing : desired)
                rows.Add(new ChangelogRow(bucket, record.TableName, record.RecordId, ChangeOperation.Delete));
            _current[record] = [];
            return;
        }

        var next = new List<string>(desired.Count);
        foreach (var bucket in desired)
        {
            if (string.IsNullOrEmpty(bucket) || next.Contains(bucket, StringComparer.Ordinal))
                continue;
            next.Add(bucket);
            var kind = existing.Contains(bucket, StringComparer.Ordinal) ? ChangeOperation.Update : ChangeOperation.Insert;
            rows.Add(new ChangelogRow(bucket, record.TableName, record.RecordId, kind));
        }
        foreach (var bucket in existing)
        {
            if (!next.Contains(bucket, StringComparer.Ordinal))
                rows.Add(new ChangelogRow(bucket, record.TableName, record.RecordId, ChangeOperation.Delete));
        }
        _current[record] = next;
    }

    /// <summary>The net edge changes of the whole batch against the loaded state.</summary>
    public (List<(RecordKey Record, string BucketId)> Added, List<(RecordKey Record, string BucketId)> Removed) NetChanges()
    {
        var added = new List<(RecordKey, string)>();
        var removed = new List<(RecordKey, string)>();
        foreach (var (record, now) in _current)
        {
            var before = _loaded.TryGetValue(record, out var loaded) ? loaded : [];
            foreach (var bucket in now)
            {
                if (!before.Contains(bucket, StringComparer.Ordinal))
                    added.Add((record, bucket));
            }
            foreach (var bucket in before)
            {
                if (!now.Contains(bucket, StringComparer.Ordinal))
                    removed.Add((record, bucket));
            }
        }
        return (added, removed);
    }
}
