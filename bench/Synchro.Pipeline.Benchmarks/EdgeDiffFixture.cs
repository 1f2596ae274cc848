using System.Globalization;
using Synchro.Pipeline.Changelog;

namespace Synchro.Pipeline.Benchmarks;

/// <summary>One change of the edge-diff batch: its record, what happened, and the buckets its rule gave.</summary>
internal readonly record struct EdgeChange(RecordKey Record, ChangeOperation Operation, string[] Desired);

/// <summary>
/// A writer batch of <see cref="Changes"/> changes with the mix of issue 5's load (60 % inserts, 25 % updates,
/// 5 % owner changes, 10 % deletes — soft or hard), and the edges loaded for its records before the batch
/// (one <c>user:</c> bucket per existing record, a few also in <c>global</c>). About one change in twenty
/// touches a record an earlier change of the batch touched, so the in-batch overlay matters. Deterministic.
/// </summary>
internal sealed class EdgeDiffFixture
{
    public const int Changes = 10_000;

    private const int Owners = 500;

    private static readonly Lazy<EdgeDiffFixture> s_shared = new(() => new EdgeDiffFixture());

    private EdgeDiffFixture()
    {
        var random = new Random(5);
        var loaded = new Dictionary<RecordKey, List<string>>();
        var owner = new Dictionary<RecordKey, int>();
        var changes = new List<EdgeChange>(Changes);
        var inserted = new List<RecordKey>();
        var nextNew = 0;
        var nextExisting = 0;
        for (var i = 0; i < Changes; i++)
        {
            var roll = random.Next(100);
            if (roll < 60)
            {
                var record = new RecordKey("orders", "n" + (nextNew++).ToString(CultureInfo.InvariantCulture));
                var o = owner[record] = random.Next(Owners);
                inserted.Add(record);
                changes.Add(new EdgeChange(record, ChangeOperation.Insert, [Bucket(o)]));
                continue;
            }

            // An earlier insert of this batch, sometimes; otherwise a record with edges before the batch.
            RecordKey target;
            if (random.Next(20) == 0 && inserted.Count > 0)
            {
                target = inserted[random.Next(inserted.Count)];
            }
            else
            {
                target = new RecordKey("orders", "e" + (nextExisting++).ToString(CultureInfo.InvariantCulture));
                var o = owner[target] = random.Next(Owners);
                loaded[target] = nextExisting % 10 == 0 ? [Bucket(o), "global"] : [Bucket(o)];
            }
            if (roll < 85)
            {
                changes.Add(new EdgeChange(target, ChangeOperation.Update, [Bucket(owner[target])]));
            }
            else if (roll < 90)
            {
                var o = owner[target] = (owner[target] + 1 + random.Next(Owners - 1)) % Owners;
                changes.Add(new EdgeChange(target, ChangeOperation.Update, [Bucket(o)]));
            }
            else
            {
                changes.Add(new EdgeChange(target, ChangeOperation.Delete, [Bucket(owner[target])]));
            }
        }
        Batch = [.. changes];
        Loaded = loaded;
    }

    public static EdgeDiffFixture Shared => s_shared.Value;

    public EdgeChange[] Batch { get; }

    /// <summary>The edges in the database before the batch; never modified (the overlay reads it).</summary>
    public Dictionary<RecordKey, List<string>> Loaded { get; }

    public override string ToString()
        => $"{Batch.Length:N0} changes: {Batch.Count(c => c.Operation == ChangeOperation.Insert):N0} inserts, "
            + $"{Batch.Count(c => c.Operation == ChangeOperation.Update):N0} updates (owner changes among them), "
            + $"{Batch.Count(c => c.Operation == ChangeOperation.Delete):N0} deletes; {Loaded.Count:N0} records with loaded edges";

    private static string Bucket(int owner) => "user:" + owner.ToString(CultureInfo.InvariantCulture);
}
