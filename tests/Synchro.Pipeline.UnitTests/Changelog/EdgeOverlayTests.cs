using Synchro.Pipeline.Changelog;

namespace Synchro.Pipeline.Tests.Changelog;

/// <summary>The reference's edge diff, with the in-batch overlay.</summary>
public sealed class EdgeOverlayTests
{
    private static readonly RecordKey s_record = new("orders", "1");

    [Fact]
    public void Insert_into_new_buckets_is_an_insert_and_into_a_current_bucket_an_update()
    {
        var overlay = Overlay(["user:a"]);
        var rows = new List<ChangelogRow>();

        overlay.Apply(s_record, ChangeOperation.Insert, ["user:a", "user:b"], rows);

        Assert.Equal(["user:a 2", "user:b 1"], Render(rows));
        Assert.Equal(["user:a", "user:b"], overlay.Current(s_record));
    }

    [Fact]
    public void Update_that_leaves_a_bucket_deletes_from_it()
    {
        var overlay = Overlay(["user:a"]);
        var rows = new List<ChangelogRow>();

        overlay.Apply(s_record, ChangeOperation.Update, ["user:b"], rows);

        Assert.Equal(["user:b 1", "user:a 3"], Render(rows));
        var (added, removed) = overlay.NetChanges();
        Assert.Equal([(s_record, "user:b")], added);
        Assert.Equal([(s_record, "user:a")], removed);
    }

    [Fact]
    public void Delete_emits_a_delete_in_every_current_bucket_or_in_the_desired_ones_when_there_are_none()
    {
        var inBuckets = Overlay(["user:a", "global"]);
        var rows = new List<ChangelogRow>();
        inBuckets.Apply(s_record, ChangeOperation.Delete, ["ignored"], rows);
        Assert.Equal(["user:a 3", "global 3"], Render(rows));
        Assert.Empty(inBuckets.Current(s_record));

        var unknown = Overlay([]);
        rows.Clear();
        unknown.Apply(s_record, ChangeOperation.Delete, ["user:z"], rows);
        Assert.Equal(["user:z 3"], Render(rows));
    }

    [Fact]
    public void Changes_later_in_the_batch_see_earlier_ones_and_only_the_net_difference_is_written()
    {
        var overlay = Overlay(["user:a"]);
        var rows = new List<ChangelogRow>();

        overlay.Apply(s_record, ChangeOperation.Update, ["user:b"], rows);
        overlay.Apply(s_record, ChangeOperation.Update, ["user:a"], rows);

        Assert.Equal(["user:b 1", "user:a 3", "user:a 1", "user:b 3"], Render(rows));
        var (added, removed) = overlay.NetChanges();
        Assert.Empty(added);
        Assert.Empty(removed);
    }

    [Fact]
    public void Empty_and_duplicate_bucket_ids_are_dropped()
    {
        var overlay = Overlay([]);
        var rows = new List<ChangelogRow>();

        overlay.Apply(s_record, ChangeOperation.Insert, ["", "user:a", "user:a"], rows);

        Assert.Equal(["user:a 1"], Render(rows));
    }

    [Fact]
    public void A_part_written_settles_its_edges_and_a_part_rolled_back_leaves_none_so_the_next_part_starts_from_the_database()
    {
        var overlay = Overlay(["user:a"]);
        var rows = new List<ChangelogRow>();

        // Part 1 moves the record to b and is written.
        overlay.Apply(s_record, ChangeOperation.Update, ["user:b"], rows);
        overlay.Settle();
        // Part 2 moves it to c and is rolled back (the changelog refused it).
        overlay.Apply(s_record, ChangeOperation.Update, ["user:c"], rows);
        overlay.Discard();
        Assert.Equal(["user:b"], overlay.Current(s_record));

        // Part 3 starts from b, and its net changes are against b, not a.
        rows.Clear();
        overlay.Apply(s_record, ChangeOperation.Update, ["user:d"], rows);
        Assert.Equal(["user:d 1", "user:b 3"], Render(rows));
        var (added, removed) = overlay.NetChanges();
        Assert.Equal([(s_record, "user:d")], added);
        Assert.Equal([(s_record, "user:b")], removed);

        // A new batch forgets what was settled.
        overlay.Reset(new Dictionary<RecordKey, List<string>> { [s_record] = ["user:d"] });
        Assert.Equal(["user:d"], overlay.Current(s_record));
    }

    private static EdgeOverlay Overlay(List<string> existing)
        => new(existing.Count == 0 ? [] : new Dictionary<RecordKey, List<string>> { [s_record] = existing });

    private static List<string> Render(List<ChangelogRow> rows) => [.. rows.Select(r => $"{r.BucketId} {(int)r.Operation}")];
}
