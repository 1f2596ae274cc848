using BenchmarkDotNet.Attributes;
using Synchro.Pipeline.Changelog;

namespace Synchro.Pipeline.Benchmarks;

/// <summary>
/// The writer's edge diff for one batch of <see cref="EdgeDiffFixture.Changes"/> changes (<see cref="EdgeDiffFixture"/>);
/// results are per change. Both sides produce the same changelog rows, in the same order (checked at setup).
/// </summary>
/// <remarks>
/// Ours: <c>EdgeOverlay</c> as <c>WriterStage.WriteAsync</c> uses it — apply every change over the loaded edges, then
/// the batch's net edge changes once. Baseline: the reference's per-change approach — per change, look its edges up
/// (the edges earlier changes wrote, else the loaded ones), compute the added and removed buckets with LINQ
/// <c>Except</c>, build its rows, and record its own edge writes.
/// </remarks>
[MemoryDiagnoser]
public class EdgeDiffBenchmarks
{
    private EdgeChange[] _batch = [];
    private Dictionary<RecordKey, List<string>> _loaded = [];

    [GlobalSetup]
    public void Setup()
    {
        var fixture = EdgeDiffFixture.Shared;
        _batch = fixture.Batch;
        _loaded = fixture.Loaded;
        Console.WriteLine($"// Fixture: {fixture}");

        var ours = Overlay(_batch, _loaded);
        var theirs = PerChange(_batch, _loaded);
        if (!ours.Rows.SequenceEqual(theirs.Rows))
            throw new InvalidOperationException($"The changelog rows differ: ours {ours.Rows.Count:N0}, baseline {theirs.Rows.Count:N0}.");
        Console.WriteLine($"// Validation: both write the same {ours.Rows.Count:N0} changelog rows; edge rows written: ours {ours.Added + ours.Removed:N0} (net), "
            + $"baseline {theirs.Added + theirs.Removed:N0} (per change)");
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = EdgeDiffFixture.Changes)]
    public int PerChangeLinq() => PerChange(_batch, _loaded).Rows.Count;

    [Benchmark(OperationsPerInvoke = EdgeDiffFixture.Changes)]
    public int EdgeOverlay() => Overlay(_batch, _loaded).Rows.Count;

    private static (List<ChangelogRow> Rows, int Added, int Removed) Overlay(EdgeChange[] batch, Dictionary<RecordKey, List<string>> loaded)
    {
        var overlay = new EdgeOverlay(loaded);
        var rows = new List<ChangelogRow>(batch.Length);
        foreach (var change in batch)
        {
            // As the writer: a delete of a record that is in buckets takes them, not its rule's.
            var current = overlay.Current(change.Record);
            var desired = change.Operation == ChangeOperation.Delete && current.Count > 0 ? current : change.Desired;
            overlay.Apply(change.Record, change.Operation, desired, rows);
        }
        var (added, removed) = overlay.NetChanges();
        return (rows, added.Count, removed.Count);
    }

    private static (List<ChangelogRow> Rows, int Added, int Removed) PerChange(EdgeChange[] batch, Dictionary<RecordKey, List<string>> loaded)
    {
        var written = new Dictionary<RecordKey, List<string>>();
        var rows = new List<ChangelogRow>(batch.Length);
        var added = new List<(RecordKey, string)>();
        var removed = new List<(RecordKey, string)>();
        foreach (var change in batch)
        {
            var record = change.Record;
            var existing = written.TryGetValue(record, out var mine) ? mine : loaded.TryGetValue(record, out var before) ? before : [];
            if (change.Operation == ChangeOperation.Delete)
            {
                foreach (var bucket in existing.Count > 0 ? existing : [.. change.Desired])
                    rows.Add(new ChangelogRow(bucket, record.TableName, record.RecordId, ChangeOperation.Delete));
                removed.AddRange(existing.Select(b => (record, b)));
                written[record] = [];
                continue;
            }
            var desired = change.Desired.Where(b => !string.IsNullOrEmpty(b)).Distinct(StringComparer.Ordinal).ToList();
            var toAdd = desired.Except(existing, StringComparer.Ordinal).ToList();
            var toRemove = existing.Except(desired, StringComparer.Ordinal).ToList();
            foreach (var bucket in desired)
                rows.Add(new ChangelogRow(bucket, record.TableName, record.RecordId, existing.Contains(bucket) ? ChangeOperation.Update : ChangeOperation.Insert));
            foreach (var bucket in toRemove)
                rows.Add(new ChangelogRow(bucket, record.TableName, record.RecordId, ChangeOperation.Delete));
            added.AddRange(toAdd.Select(b => (record, b)));
            removed.AddRange(toRemove.Select(b => (record, b)));
            written[record] = desired;
        }
        return (rows, added.Count, removed.Count);
    }
}
