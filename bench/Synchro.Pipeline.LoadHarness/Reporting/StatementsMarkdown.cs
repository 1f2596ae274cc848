using System.Globalization;
using System.Text;
using Synchro.Pipeline.LoadHarness.ServerCost;
using Synchro.Pipeline.LoadHarness.Statements;

namespace Synchro.Pipeline.LoadHarness.Reporting;

/// <summary>Each phase's statements (--statements) as Markdown: the pipeline's and the shared transaction control, then pgbench's apart.</summary>
internal static class StatementsMarkdown
{
    private const int PipelineRowsShown = 12;
    private const int WorkloadRowsShown = 6;

    public static string Render(IReadOnlyList<(string Phase, ServerCostResult Cost)> phases)
    {
        var md = new StringBuilder();
        foreach (var (phase, cost) in phases)
        {
            if (cost.Statements is not { } s)
                continue;
            Line(md, string.Create(CultureInfo.InvariantCulture,
                $"Statements, {phase} (pg_stat_statements, reset at the phase's start: {s.TotalMilliseconds:N0} ms of execution in {s.Statements:N0} statements; numbered cursor names folded to _N; share: of the phase's execution time):"));
            Line(md);
            Table(md, s, s.Top.Where(t => t.Origin != StatementOrigin.Workload).Take(PipelineRowsShown), "pipeline and others");
            var workload = s.Top.Where(t => t.Origin == StatementOrigin.Workload).Take(WorkloadRowsShown).ToList();
            if (workload.Count > 0)
            {
                Line(md, $"pgbench's workload (its writes to orders and order_lines), {phase}:");
                Line(md);
                Table(md, s, workload, "pgbench");
            }
        }
        return md.ToString();
    }

    private static void Table(StringBuilder md, StatementCosts s, IEnumerable<StatementCost> rows, string heading)
    {
        Line(md, $"| {heading} | calls | total ms | mean ms | rows | rows / call | share |");
        Line(md, "|---|---:|---:|---:|---:|---:|---:|");
        var shown = rows.ToList();
        var texts = StatementText.Shown([.. shown.Select(r => r.Query)]);
        foreach (var (r, query) in shown.Zip(texts))
        {
            var text = query.Replace("|", "\\|", StringComparison.Ordinal).Replace("`", "'", StringComparison.Ordinal);
            var mark = r.Origin == StatementOrigin.Shared ? " (pgbench's and the pipeline's)" : "";
            Line(md, string.Create(CultureInfo.InvariantCulture,
                $"| `{text}`{mark} | {r.Calls:N0} | {r.TotalMilliseconds:F1} | {r.MeanMilliseconds:F3} | {r.Rows:N0} | {r.RowsPerCall:F1} | {(s.Share(r) is { } share ? (share * 100).ToString("F1", CultureInfo.InvariantCulture) + " %" : "")} |"));
        }
        Line(md);
    }

    private static void Line(StringBuilder md, string text = "") => md.Append(text).Append('\n');
}
