using System.Globalization;
using Synchro.Pipeline.Buckets;
using Synchro.Pipeline.Postgres;

namespace Synchro.Pipeline.Changelog;

/// <summary>
/// The ids the changelog can hold, checked before anything is written (invariant 7 of docs/architecture.md): a change
/// whose record id or one of whose bucket ids is longer than the limit, or is text PostgreSQL cannot store, fails as a
/// rule failure naming the length and the limit instead of failing its batch.
/// </summary>
/// <remarks>
/// <para>
/// Why the limits exist: a btree index tuple on 8 KB pages holds at most 2,704 bytes, and the ids are index keys
/// (<c>sync_changelog</c> <c>(bucket_id, seq)</c> and <c>(table_name, record_id)</c>; <c>sync_bucket_edges</c>
/// <c>(table_name, record_id, bucket_id)</c> and <c>(bucket_id, table_name, record_id)</c>). Measured on PostgreSQL 15
/// with incompressible random text (compressible text fits further, so a limit must not count on it): with a 127-byte
/// table name, the longest a schema-qualified name can be, the two edge indexes accept a record id and a bucket id of
/// together at most <see cref="MaxIdBytesTogether"/> bytes; <c>(bucket_id, seq)</c> accepts a bucket id of 2,684 bytes,
/// <c>(table_name, record_id)</c> a record id of 2,560. The defaults, 1 KiB each, leave 508 bytes of that to spare.
/// </para>
/// <para>
/// Cost: a length comparison per id; bytes are counted only for ids of more than a third of the limit in characters
/// (a UTF-16 character is at most 3 bytes of UTF-8), and the NUL and surrogate checks are vectorised scans.
/// </para>
/// </remarks>
internal sealed class ChangelogLimits
{
    /// <summary>What both <c>sync_bucket_edges</c> indexes accept for a record id and a bucket id together, next to a 127-byte table name.</summary>
    public const int MaxIdBytesTogether = 2_556;

    /// <summary>The default of <see cref="WalPipelineOptions.MaxRecordIdBytes"/>.</summary>
    public const int DefaultMaxRecordIdBytes = 1_024;

    /// <summary>The default of <see cref="WalPipelineOptions.MaxBucketIdBytes"/>.</summary>
    public const int DefaultMaxBucketIdBytes = 1_024;

    // Characters of an offending id quoted in a failure's reason: enough to recognise it, never the whole id.
    private const int ShownIdChars = 40;

    public ChangelogLimits(int maxRecordIdBytes, int maxBucketIdBytes)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxRecordIdBytes, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxBucketIdBytes, 1);
        MaxRecordIdBytes = maxRecordIdBytes;
        MaxBucketIdBytes = maxBucketIdBytes;
    }

    /// <summary>The defaults.</summary>
    public static ChangelogLimits Default { get; } = new(DefaultMaxRecordIdBytes, DefaultMaxBucketIdBytes);

    public int MaxRecordIdBytes { get; }

    public int MaxBucketIdBytes { get; }

    /// <summary>Fails <paramref name="change"/> when its record id is longer than the limit; called before its rule runs, which then skips it.</summary>
    public void CheckRecordId(BucketAssignment change)
    {
        if (RecordIdProblem(change.RecordId) is { } problem && change.Failure is null)
            change.Fail(problem);
    }

    /// <summary>Why <paramref name="recordId"/> cannot be a changelog record id, or null.</summary>
    public string? RecordIdProblem(string recordId)
    {
        if (PgText.FitsIn(recordId, MaxRecordIdBytes, out var bytes))
            return null;
        return string.Create(CultureInfo.InvariantCulture,
            $"record id '{PgText.Excerpt(recordId, ShownIdChars)}' is {bytes:N0} bytes, more than the {MaxRecordIdBytes:N0} the changelog takes (MaxRecordIdBytes)");
    }

    /// <summary>
    /// Fails <paramref name="change"/> when one of its bucket ids cannot be written: longer than the limit, or holding a
    /// NUL or an unpaired surrogate. Null and empty ids are not checked: they are dropped.
    /// </summary>
    public void CheckBuckets(BucketAssignment change)
    {
        if (change.Failure is not null || change.KeepExistingBuckets)
            return;
        var buckets = change.Buckets;
        for (var i = 0; i < buckets.Count; i++)
        {
            if (BucketIdProblem(buckets[i]) is { } problem)
            {
                change.Fail(problem);
                return;
            }
        }
    }

    /// <summary>Why <paramref name="bucketId"/> cannot be a changelog bucket id, or null (also for null and empty, which are dropped).</summary>
    public string? BucketIdProblem(string? bucketId)
    {
        if (string.IsNullOrEmpty(bucketId))
            return null;
        if (!PgText.FitsIn(bucketId, MaxBucketIdBytes, out var bytes))
        {
            return string.Create(CultureInfo.InvariantCulture,
                $"bucket id '{PgText.Excerpt(bucketId, ShownIdChars)}' is {bytes:N0} bytes, more than the {MaxBucketIdBytes:N0} the changelog takes (MaxBucketIdBytes)");
        }
        return PgText.Unstorable(bucketId) is { } why
            ? $"bucket id '{PgText.Storable(PgText.Excerpt(bucketId, ShownIdChars), ShownIdChars + 1)}' cannot be stored: {why}"
            : null;
    }
}
