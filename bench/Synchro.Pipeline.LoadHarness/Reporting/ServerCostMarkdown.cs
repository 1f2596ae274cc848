using System.Globalization;
using System.Text;
using Synchro.Pipeline.LoadHarness.ServerCost;

namespace Synchro.Pipeline.LoadHarness.Reporting;

/// <summary>The server's cost per phase as Markdown: CPU per process kind and WAL per change, then each phase's WAL by relation when it was read.</summary>
internal static class ServerCostMarkdown
{
    // Relations listed per phase; the rest are summed in one line.
    private const int RelationsShown = 12;

    public static string Render(IReadOnlyList<(string Phase, ServerCostResult Cost)> phases)
    {
        var md = new StringBuilder();
        if (phases.Count == 0)
            return "";
        Line(md, "Server side, per phase (CPU from /proc of the server's processes, per 1M changes; WAL of the whole cluster, insert LSN difference; "
            + "FPI share: full-page images' bytes in pg_waldump --stats over the same range):");
        Line(md);
        Line(md, "| phase | changes | s | " + string.Join(" | ", ServerProcessKind.All.Select(k => k.Heading)) + " | server CPU s per 1M | WAL MB | WAL B/change | WAL records / change | FPIs / change | FPI share of WAL |");
        Line(md, "|---|---:|---:|" + string.Concat(ServerProcessKind.All.Select(_ => "---:|")) + "---:|---:|---:|---:|---:|---:|");
        foreach (var (phase, c) in phases)
        {
            var perMillion = c.CpuSecondsPerMillionChanges;
            var kinds = ServerProcessKind.All.Select(k => perMillion.TryGetValue(k.Kind, out var v) ? F(v, "F2") : "");
            var records = c.StatsWalRecords is { } r && c.Changes > 0 ? (double)r / c.Changes : (double?)null;
            Line(md, $"| {phase} | {c.Changes.ToString("N0", CultureInfo.InvariantCulture)} | {F(c.Seconds, "F1")} | {string.Join(" | ", kinds)} | {F(c.TotalCpuSecondsPerMillionChanges, "F2")} "
                + $"| {F(c.WalBytes / 1e6, "F1")} | {F(c.WalBytesPerChange, "F0")} | {F(records, "F2")} | {F(c.FullPageImagesPerChange, "F3")} | {F(c.FullPageImageShare * 100, "F1", " %")} |");
        }
        Line(md);
        foreach (var (phase, c) in phases.Where(p => p.Cost.WalByRelation is { Count: > 0 }))
        {
            var relations = c.WalByRelation!;
            var total = relations.Sum(r => r.Bytes);
            Line(md, $"WAL by relation, {phase} ({total / 1e6:F1} MB in pg_waldump's records; a record counts for the relation of its first block):");
            Line(md);
            Line(md, "| relation or resource manager | records | MB | B/change | full-page images | FPI MB | share |");
            Line(md, "|---|---:|---:|---:|---:|---:|---:|");
            foreach (var r in relations.Take(RelationsShown))
                Row(md, r, c.Changes, total);
            if (relations.Count > RelationsShown)
            {
                var rest = relations.Skip(RelationsShown).ToList();
                Row(md, new WalRelationShare($"{rest.Count} others", rest.Sum(r => r.Records), rest.Sum(r => r.Bytes), rest.Sum(r => r.FullPageImageBytes), rest.Sum(r => r.FullPageImages)), c.Changes, total);
            }
            Line(md);
        }
        return md.ToString();
    }

    private static void Row(StringBuilder md, WalRelationShare r, long changes, long total)
        => Line(md, $"| {r.Relation} | {r.Records.ToString("N0", CultureInfo.InvariantCulture)} | {F(r.Bytes / 1e6, "F1")} | {F(changes > 0 ? (double)r.Bytes / changes : null, "F0")} "
            + $"| {r.FullPageImages.ToString("N0", CultureInfo.InvariantCulture)} | {F(r.FullPageImageBytes / 1e6, "F1")} | {F(total > 0 ? r.Bytes * 100.0 / total : null, "F1", " %")} |");

    private static string F(double? value, string format, string unit = "")
        => value is { } v ? v.ToString(format, CultureInfo.InvariantCulture) + unit : "";

    private static void Line(StringBuilder md, string text = "") => md.Append(text).Append('\n');
}
