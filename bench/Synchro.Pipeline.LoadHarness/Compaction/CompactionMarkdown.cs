using System.Globalization;
using System.Text;
using Synchro.Pipeline.LoadHarness.Contenders;

namespace Synchro.Pipeline.LoadHarness.Compaction;

/// <summary>The <c>compaction</c> verb's report as Markdown.</summary>
internal static class CompactionMarkdown
{
    // Issue 15's goal: the writer keeps at least this share of its throughput while compaction runs.
    private const double MinWriterRatio = 0.80;

    public static string Render(CompactionReport r)
    {
        var md = new StringBuilder();
        var m = r.Machine;
        var c = r.Compaction;
        Line(md, $"## Changelog compaction — {r.StartedAt:yyyy-MM-dd HH:mm} UTC");
        Line(md);
        Line(md, $"`{m.Command}`");
        Line(md);
        Line(md, $"Machine: {m.Cores} cores, PostgreSQL {m.ServerVersion}, {m.OperatingSystem}, {m.Runtime}. Whole run {r.TotalSeconds:F0} s "
            + $"({string.Join(", ", r.StepSeconds.Select(s => $"{s.Key} {s.Value:F0} s"))}).");
        Line(md);
        Line(md, $"Changelog: a pgbench backlog of {r.Drain.Changes:N0} changes ({r.Backlog.Transactions:N0} transactions, {r.Backlog.GenerationSeconds:F0} s) drained by our pipeline "
            + $"into the source database in {r.Drain.WallSeconds:F1} s ({F(r.Drain.ChangesPerSecond, "N0")} changes/s): {r.Drain.ChangelogRows:N0} changelog rows. "
            + $"**Backdated for the test:** the older half of the backlog was drained with created_at's default set {r.BackdatedBy.TotalDays:F0} days back "
            + $"(`ALTER TABLE sync_changelog ALTER COLUMN created_at SET DEFAULT now() - interval '30 days'`, restored before the newer half was generated and drained): "
            + $"{r.BackdatedRows:N0} rows, seq <= {r.BackdatedUpToSeq:N0}, are older than the retention ({r.Retention.TotalDays:F0} days); then `VACUUM (ANALYZE)`.");
        Line(md);
        var e = r.Expected;
        Line(md, $"Expected by a window count over every row ({e.Seconds:F1} s): {e.Keys:N0} keys (bucket, table, record), {e.Superseded:N0} superseded rows, "
            + $"{e.LatestDeletes:N0} latest-of-key delete rows of which {e.ExpiredDeletes:N0} are past the retention: {e.Total:N0} to remove. "
            + $"Removed: {c.RowsRemoved:N0} ({(c.RowsRemoved == e.Total ? "exact" : "**differs**")}).");
        Line(md);
        Line(md, "| compaction, one pass alone | value |");
        Line(md, "|---|---:|");
        Line(md, $"| rows removed | {c.RowsRemoved:N0} of {r.Before.Rows:N0} |");
        Line(md, $"| wall time | {c.Seconds:F1} s |");
        Line(md, $"| rows removed per second | {c.RowsRemovedPerSecond:N0} |");
        Line(md, $"| WAL written (insert LSN before/after, after a CHECKPOINT: includes full-page images) | {c.WalBytes / 1e6:N1} MB ({(c.RowsRemoved > 0 ? (double)c.WalBytes / c.RowsRemoved : 0):F0} B per row removed) |");
        Line(md, $"| harness process (compaction runs in it): working set before / peak | {c.Usage.HarnessWorkingSetBeforeBytes / 1e6:F0} MB / {c.Usage.HarnessPeakWorkingSetBytes / 1e6:F0} MB |");
        Line(md, $"| harness process: peak managed heap / allocated / CPU | {c.Usage.HarnessPeakManagedBytes / 1e6:F0} MB / {c.Usage.HarnessAllocatedBytes / 1e6:F1} MB / {c.Usage.HarnessCpuSeconds:F2} s |");
        Line(md, $"| server backend(s) of the compactor: peak private memory (RssAnon) / CPU | {F(c.Usage.BackendPeakPrivateBytes / 1e6, "F0", " MB")} / {F(c.Usage.BackendCpuSeconds, "F1", " s")} ({c.Usage.Backends} backends, {c.Usage.Samples} samples every {PeakSampler.Interval.TotalMilliseconds:F0} ms) |");
        Line(md, $"| buckets with a horizon after the pass / highest horizon | {c.Horizons.Buckets:N0} / {c.Horizons.MaxHorizonSeq:N0} |");
        Line(md);
        Line(md, "| sync_changelog | rows | table MB | indexes MB | total MB (pg_total_relation_size) |");
        Line(md, "|---|---:|---:|---:|---:|");
        Sizes(md, "before compaction", r.Before);
        Sizes(md, "right after compaction", r.AfterCompaction);
        Sizes(md, $"after a plain VACUUM ({r.VacuumSeconds:F1} s)", r.AfterVacuum);
        if (r.AfterWriter is { } w)
            Sizes(md, "after the writer phase (2 drains of the second backlog)", w);
        Line(md);
        if (r.AfterWriter is { } grown)
        {
            Line(md, $"Growth over the writer phase, from after the VACUUM: {grown.Rows - r.AfterVacuum.Rows:N0} rows, table {(grown.TableBytes - r.AfterVacuum.TableBytes) / 1e6:F1} MB, "
                + $"indexes {(grown.IndexBytes.Values.Sum() - r.AfterVacuum.IndexBytes.Values.Sum()) / 1e6:F1} MB.");
            Line(md);
        }
        Line(md, $"Indexes before / after VACUUM: {string.Join(", ", r.Before.IndexBytes.Select(i => $"{i.Key} {i.Value / 1e6:F1} / {(r.AfterVacuum.IndexBytes.TryGetValue(i.Key, out var a) ? a / 1e6 : 0):F1} MB"))}.");
        Line(md);
        Line(md, "A DELETE and a plain VACUUM do not give space back to the operating system: the freed row slots and index pages are "
            + "reused by later inserts (only empty pages at the very end of the table are truncated). The sizes after the writer phase show "
            + "the reuse; `VACUUM FULL` or pg_repack would shrink the files, under an exclusive lock.");
        Line(md);
        if (r.Writer is { } writer)
        {
            Line(md, $"Writer throughput: a second backlog of {writer.Alone.Changes:N0} changes behind two slots, drained by our pipeline into the same (compacted) changelog, "
                + $"first alone, then while the compactor runs pass after pass on that changelog ({writer.CompactionPasses} passes finished, the one running at the drain's end cancelled; "
                + $"{writer.CompactionRowsRemoved:N0} rows removed meanwhile; the second drain writes the same changes again, so the first drain's rows become superseded).");
            Line(md);
            Line(md, "| writer | changes | wall s | changes/s | CPU s per 1M changes | peak RSS MB | changelog rows (net) |");
            Line(md, "|---|---:|---:|---:|---:|---:|---:|");
            Drain(md, "alone", writer.Alone);
            Drain(md, "beside the compaction loop", writer.WithCompaction);
            Line(md);
            Line(md, $"Each drain's process from start to exit (start-up and stop included): {writer.AloneProcessSeconds:F1} s alone, {writer.WithCompactionProcessSeconds:F1} s beside the loop; "
                + $"the loop's pass in flight stopped {writer.LoopStopSeconds:F1} s after its token was cancelled.");
            Line(md);
            var met = writer.Ratio is { } ratio ? (ratio >= MinWriterRatio ? "met" : "**not met**") : "n/a";
            Line(md, $"With compaction running the writer kept {F(writer.Ratio * 100, "F0", " %")} of its throughput alone (goal >= {MinWriterRatio:P0}: {met}). "
                + (writer.CompactionUsage is { } u ? $"The loop's server backends peaked at {F(u.BackendPeakPrivateBytes / 1e6, "F0", " MB")} private memory and used {F(u.BackendCpuSeconds, "F1", " s")} CPU; the harness peaked at {u.HarnessPeakWorkingSetBytes / 1e6:F0} MB." : ""));
            Line(md);
        }
        else
        {
            Line(md, "Writer throughput: **not measured** (the drain alone failed).");
            Line(md);
        }
        if (r.Reader is { Count: > 0 } pages)
        {
            Line(md, "| reader, pages on the compacted changelog | pages | rows per page | p50 ms | p99 ms | max ms |");
            Line(md, "|---|---:|---:|---:|---:|---:|");
            foreach (var p in pages)
                Line(md, $"| {p.Buckets} buckets, limit {p.Limit:N0} | {p.Pages} | {p.RowsPerPage:F0} | {p.P50Milliseconds:F2} | {p.P99Milliseconds:F2} | {p.MaxMilliseconds:F2} |");
            Line(md);
        }
        if (r.ReaderNote is not null)
        {
            Line(md, $"Reader: {r.ReaderNote}.");
            Line(md);
        }
        return md.ToString();
    }

    private static void Sizes(StringBuilder md, string when, ChangelogSizes s)
        => Line(md, $"| {when} | {s.Rows:N0} | {s.TableBytes / 1e6:F1} | {s.IndexBytes.Values.Sum() / 1e6:F1} | {s.TotalBytes / 1e6:F1} |");

    private static void Drain(StringBuilder md, string name, ContenderResult d)
        => Line(md, d.Succeeded
            ? $"| {name} | {d.Changes:N0} | {d.WallSeconds:F1} | {F(d.ChangesPerSecond, "N0")} | {F(d.CpuSecondsPerMillionChanges, "F1")} | {F(d.PeakRssBytes / 1e6, "F0")} | {d.ChangelogRows:N0} |"
            : $"| {name} | **failed: {d.Error}** | | | | | |");

    private static string F(double? value, string format, string unit = "")
        => value is { } v ? v.ToString(format, CultureInfo.InvariantCulture) + unit : "not measured";

    private static void Line(StringBuilder md, string text = "") => md.Append(text).Append('\n');
}
