using Synchro.Pipeline.Buckets;

namespace Synchro.Pipeline.Changelog;

/// <summary>
/// The bucket edges of a batch's records as the batch's changes apply, one after another: each change
/// sees the edges left by the changes before it (the in-batch overlay), and the net difference from
/// the loaded state is written once at the end.
/// </summary>
/// <remarks>
/// <para>
/// Invariant: a bucket list the overlay holds is never changed afterwards. Lists are borrowed, not copied, when they
/// are already clean (no empty or repeated id) — the common single-bucket case allocates nothing — so the lists
/// passed to <see cref="Apply"/> must stay unchanged until the next <see cref="Reset"/>.
/// </para>
/// <para>
/// A batch may be written in parts (the writer isolates a change the changelog refuses): after a part is written,
/// <see cref="Settle"/> makes its edges the state the next part starts from; after a part is rolled back,
/// <see cref="Discard"/> forgets them. The net changes are always against the last settled state.
/// </para>
/// </remarks>
internal sealed class EdgeOverlay
{
    private Dictionary<RecordKey, List<string>> _loaded = [];
    // Edges of records whose earlier parts were written: what the database holds now, where it differs from _loaded.
    private readonly Dictionary<RecordKey, IReadOnlyList<string>> _settled = [];
    private readonly Dictionary<RecordKey, IReadOnlyList<string>> _current = [];

    public EdgeOverlay()
    {
    }

    /// <param name="loaded">The edges in the database before the batch (records without edges absent).</param>
    public EdgeOverlay(Dictionary<RecordKey, List<string>> loaded) => _loaded = loaded;

    /// <summary>Starts over for a new batch whose edges before it are <paramref name="loaded"/>; keeps the capacity.</summary>
    public void Reset(Dictionary<RecordKey, List<string>> loaded)
    {
        _loaded = loaded;
        _settled.Clear();
        _current.Clear();
    }

    /// <summary>The changes applied since the last <see cref="Settle"/> were written: their edges are the database's now.</summary>
    public void Settle()
    {
        foreach (var (record, now) in _current)
            _settled[record] = now;
        _current.Clear();
    }

    /// <summary>The changes applied since the last <see cref="Settle"/> were rolled back: forget their edges.</summary>
    public void Discard() => _current.Clear();

    /// <summary>The record's buckets now (after the earlier changes of the batch).</summary>
    public IReadOnlyList<string> Current(RecordKey record)
        => _current.TryGetValue(record, out var current) ? current : Settled(record);

    /// <summary>The record's buckets in the database: as loaded, or as the last written part left them.</summary>
    private IReadOnlyList<string> Settled(RecordKey record)
    {
        // Checked first so the usual, single-part batch pays no second lookup.
        if (_settled.Count > 0 && _settled.TryGetValue(record, out var settled))
            return settled;
        return _loaded.TryGetValue(record, out var loaded) ? loaded : [];
    }

    /// <summary>
    /// Applies one change as its assignment decided and appends its changelog rows; returns the rule's failure
    /// instead (nothing applied) when it failed. As in the reference, a delete of a record that is in buckets leaves
    /// them all whatever the rule said (its failure included); <paramref name="assignment"/> null, or
    /// <see cref="BucketAssignment.KeepExistingBuckets"/>, keeps the current buckets.
    /// </summary>
    /// <remarks>The assignment's bucket list is borrowed (see the class remarks).</remarks>
    public string? ApplyDecision(RecordKey record, ChangeOperation operation, BucketAssignment? assignment, List<ChangelogRow> rows)
    {
        if (operation == ChangeOperation.Delete && Current(record).Count > 0)
            assignment = null;
        if (assignment?.Failure is { } failure)
            return failure;
        var desired = assignment is null || assignment.KeepExistingBuckets ? Current(record) : (IReadOnlyList<string>)assignment.Buckets;
        Apply(record, operation, desired, rows);
        return null;
    }

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

        var next = IsClean(desired) ? desired : Clean(desired);
        foreach (var bucket in next)
        {
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

    private static bool IsClean(IReadOnlyList<string> buckets)
    {
        for (var i = 0; i < buckets.Count; i++)
        {
            if (string.IsNullOrEmpty(buckets[i]))
                return false;
            for (var j = 0; j < i; j++)
            {
                if (string.Equals(buckets[i], buckets[j], StringComparison.Ordinal))
                    return false;
            }
        }
        return true;
    }

    /// <summary>Without empty ids and repeats, in first-seen order.</summary>
    private static List<string> Clean(IReadOnlyList<string> buckets)
    {
        var clean = new List<string>(buckets.Count);
        foreach (var bucket in buckets)
        {
            if (!string.IsNullOrEmpty(bucket) && !clean.Contains(bucket, StringComparer.Ordinal))
                clean.Add(bucket);
        }
        return clean;
    }

    /// <summary>The net edge changes of the whole batch against the loaded state.</summary>
    public (List<(RecordKey Record, string BucketId)> Added, List<(RecordKey Record, string BucketId)> Removed) NetChanges()
    {
        var added = new List<(RecordKey, string)>();
        var removed = new List<(RecordKey, string)>();
        NetChanges(added, removed);
        return (added, removed);
    }

    /// <summary>Appends the net edge changes since the last <see cref="Settle"/> (the whole batch, when it is written in one part) against the database's state.</summary>
    public void NetChanges(List<(RecordKey Record, string BucketId)> added, List<(RecordKey Record, string BucketId)> removed)
    {
        foreach (var (record, now) in _current)
        {
            var before = Settled(record);
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
    }
}
