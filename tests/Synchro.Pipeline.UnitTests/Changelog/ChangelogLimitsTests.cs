using Synchro.Pipeline.Buckets;
using Synchro.Pipeline.Changelog;
using Synchro.Pipeline.Decoding;
using Synchro.Pipeline.Protocol;
using Synchro.Pipeline.Registry;

namespace Synchro.Pipeline.Tests.Changelog;

/// <summary>Ids the changelog cannot hold fail their change with the length and the limit, counted in UTF-8 bytes.</summary>
public sealed class ChangelogLimitsTests
{
    private static readonly TableRegistration s_table = new("orders") { OwnerColumn = "user_id" };
    private readonly ChangeBatchPool _pool = new();

    [Theory]
    [InlineData("abc", 3, true)]
    [InlineData("abcd", 3, false)]
    [InlineData("ééé", 6, true)]    // 2 bytes each
    [InlineData("ééé", 5, false)]
    [InlineData("😀", 4, true)]      // a surrogate pair, 4 bytes
    [InlineData("😀", 3, false)]
    public void Lengths_are_utf8_bytes(string id, int limit, bool fits)
        => Assert.Equal(fits, new ChangelogLimits(limit, limit).RecordIdProblem(id) is null);

    [Fact]
    public void A_record_id_over_the_limit_fails_with_its_length_the_limit_and_a_recognisable_excerpt()
    {
        var limits = new ChangelogLimits(10, 10);

        Assert.Equal(
            "record id '0123456789012345678901234567890123456789…' is 50 bytes, more than the 10 the changelog takes (MaxRecordIdBytes)",
            limits.RecordIdProblem(string.Concat(Enumerable.Repeat("0123456789", 5))));
        Assert.Null(limits.RecordIdProblem("0123456789"));
    }

    [Fact]
    public void A_bucket_id_over_the_limit_or_with_a_NUL_or_an_unpaired_surrogate_fails_and_empty_ones_are_left_to_be_dropped()
    {
        var limits = new ChangelogLimits(1_024, 8);

        Assert.Equal("bucket id 'user:abcde' is 10 bytes, more than the 8 the changelog takes (MaxBucketIdBytes)", limits.BucketIdProblem("user:abcde"));
        Assert.Equal("bucket id 'a\uFFFDb' cannot be stored: it contains a NUL character, which PostgreSQL text cannot hold", limits.BucketIdProblem("a\0b"));
        Assert.Equal("bucket id 'a\uFFFD' cannot be stored: it contains an unpaired UTF-16 surrogate, which has no UTF-8 form", limits.BucketIdProblem("a\uD800"));
        Assert.Null(limits.BucketIdProblem("😀"));
        Assert.Null(limits.BucketIdProblem(""));
        Assert.Null(limits.BucketIdProblem(null));
    }

    [Fact]
    public void Checks_fail_the_assignment_once_and_leave_kept_buckets_alone()
    {
        var limits = new ChangelogLimits(5, 8);
        var batch = Batch("123456", "1", "2", "3");
        try
        {
            var longId = new BucketAssignment(batch, 0, "123456");
            limits.CheckRecordId(longId);
            Assert.StartsWith("record id '123456' is 6 bytes", longId.Failure, StringComparison.Ordinal);

            var longBucket = new BucketAssignment(batch, 1, "1");
            longBucket.Buckets.Add("user:a");
            longBucket.Buckets.Add("user:toolong");
            limits.CheckBuckets(longBucket);
            Assert.StartsWith("bucket id 'user:toolong' is 12 bytes", longBucket.Failure, StringComparison.Ordinal);

            var failed = new BucketAssignment(batch, 2, "2");
            failed.Fail("the rule failed");
            failed.Buckets.Add("user:toolong");
            limits.CheckBuckets(failed);
            Assert.Equal("the rule failed", failed.Failure);

            var kept = new BucketAssignment(batch, 3, "3") { KeepExistingBuckets = true };
            limits.CheckBuckets(kept);
            Assert.Null(kept.Failure);
        }
        finally
        {
            batch.Release();
        }
    }

    [Fact]
    public void The_defaults_leave_room_for_the_longest_table_name()
    {
        Assert.Equal((1_024, 1_024), (ChangelogLimits.Default.MaxRecordIdBytes, ChangelogLimits.Default.MaxBucketIdBytes));
        Assert.True(ChangelogLimits.DefaultMaxRecordIdBytes + ChangelogLimits.DefaultMaxBucketIdBytes <= ChangelogLimits.MaxIdBytesTogether);
    }

    private ChangeBatch Batch(params string[] ids)
    {
        var batch = _pool.Rent();
        foreach (var id in ids)
        {
            var first = batch.ValueMark.Values;
            batch.AddText(System.Text.Encoding.UTF8.GetBytes(id));
            for (var i = 1; i < s_table.ReferencedColumns.Count; i++)
                batch.AddEmpty(TupleValueKind.Null);
            batch.Add(new DecodedChange(s_table, ChangeOperation.Insert, first));
        }
        return batch;
    }
}
