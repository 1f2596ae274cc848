using System.Globalization;
using System.Text;
using Synchro.Pipeline.LoadHarness.Contenders;
using Synchro.Pipeline.LoadHarness.Idle;
using Synchro.Pipeline.LoadHarness.ServerCost;
using Synchro.Pipeline.LoadHarness.SteadyState;

namespace Synchro.Pipeline.LoadHarness.Reporting;

/// <summary>The report as Markdown: machine and backlog, the drain table with ratios to pg_recvlogical, the steady state, the idle phase and the goals.</summary>
internal static class MarkdownReport
{
    public static string Render(HarnessReport report)
    {
        var md = new StringBuilder();
        var b = report.Backlog;
        var m = report.Machine;
        Line(md, $"## Load harness — {report.StartedAt:yyyy-MM-dd HH:mm} UTC");
        Line(md);
        Line(md, $"`{m.Command}`");
        Line(md);
        Line(md, $"Machine: {m.Cores} cores, PostgreSQL {m.ServerVersion}, {m.OperatingSystem}, {m.Runtime}.");
        Line(md, $"Backlog: {b.Changes:N0} changes in {b.Transactions:N0} transactions (pgbench, 2 clients, {b.GenerationSeconds:F1} s, {b.PgbenchTps:N0} tps); "
            + $"{b.WalBytes / 1e6:N0} MB of WAL, {b.PgoutputBytes / 1e6:N0} MB of pgoutput ({(b.Changes > 0 ? (double)b.PgoutputBytes / b.Changes : 0):F0} B per change); end LSN {b.EndLsn}.");
        Line(md);
        Line(md, "| contender | changes | wall s | changes/s | vs pg_recvlogical | pgoutput MB/s | CPU s per 1M changes | peak RSS MB | allocated B/change | rows written (changelog / edges) | walsender CPU s | walsender CPU s per 1M changes |");
        Line(md, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|");
        var ratios = report.ChangesPerSecondVsPgRecvLogical;
        foreach (var c in report.Contenders.Append(report.BigTransaction).OfType<ContenderResult>())
        {
            if (!c.Succeeded)
            {
                Line(md, $"| {c.Name} | **failed: {c.Error}** | {c.WallSeconds:F1} | | | | | | | | | |");
                continue;
            }
            var rows = c.ChangelogRows is { } cl ? $"{cl:N0} / {c.EdgeRows:N0}" : "";
            Line(md, $"| {c.Name} | {(c.Changes > 0 ? c.Changes.ToString("N0", CultureInfo.InvariantCulture) : "")} | {c.WallSeconds:F2} | {F(c.ChangesPerSecond, "N0")} | {F(ratios.TryGetValue(c.Name, out var r) ? r : null, "F2", "x")} "
                + $"| {F(c.PgoutputMegabytesPerSecond, "F1")} | {F(c.CpuSecondsPerMillionChanges, "F1")} | {F(c.PeakRssBytes / 1e6, "F0")} | {F(c.AllocatedBytesPerChange, "F0")} | {rows} "
                + $"| {Walsender(c.WalsenderCpuSeconds, c.WalsenderProcesses)} | {F(c.WalsenderCpuSecondsPerMillionChanges, "F1")} |");
        }
        Line(md);
        Line(md, $"{ContenderNames.GoPerChange} drains only the first {report.Options.GoChanges:N0} changes; {ContenderNames.BinaryCopy} stores the rows {ContenderNames.OursEndToEnd} wrote (its wall time is the COPYs and the commit)"
            + (report.BigTransaction is null ? "." : $"; {ContenderNames.OursBigTransaction} drains one transaction of {report.Options.BigTransactionRows:N0} inserted rows, apart from the backlog."));
        Line(md);
        foreach (var c in report.Contenders.Append(report.BigTransaction).OfType<ContenderResult>().Where(c => c.StopError is not null))
        {
            Line(md, $"{c.Name} reached the end, then failed while stopping: {c.StopError}");
            Line(md);
        }
        md.Append(ServerCostMarkdown.Render(ServerCostPhases(report)));
        md.Append(StatementsMarkdown.Render(ServerCostPhases(report)));
        if (report.Options.ChangelogInSource || report.Options.Publication != PublicationScope.Tables)
        {
            Line(md, $"Our pipeline's changelog: {(report.Options.ChangelogInSource ? "in the source database" : "a database of its own per phase")}; "
                + $"publication: {(report.Options.Publication == PublicationScope.AllTables ? "FOR ALL TABLES" : "FOR TABLE orders, order_lines")}.");
            Line(md);
        }
        RenderSteady(md, report.SteadyState);
        RenderIdle(md, report.Idle);
        Line(md, "| # | goal (issue 5) | target | measured | met |");
        Line(md, "|---|---|---|---|---|");
        foreach (var g in report.Goals)
            Line(md, $"| {g.Number} | {g.Figure} | {g.Goal} | {g.Measured} | {(g.Met is { } met ? (met ? "met" : "**not met**") : "n/a")} |");
        return md.ToString();
    }

    /// <summary>Every phase the server's cost was measured in: the drains, then the steady state's three runs.</summary>
    internal static IReadOnlyList<(string Phase, ServerCostResult Cost)> ServerCostPhases(HarnessReport report)
    {
        var phases = report.Contenders.Append(report.BigTransaction).OfType<ContenderResult>()
            .Where(c => c.ServerCost is not null)
            .Select(c => (Phase: c.Name, Cost: c.ServerCost!))
            .ToList();
        if (report.SteadyState is { } s)
        {
            if (s.WithoutServerCost is { } without)
                phases.Add(("steady: pgbench alone", without));
            if (s.PgRecvLogicalServerCost is { } recv)
                phases.Add(("steady: with pg_recvlogical", recv));
            if (s.ServerCost is { } ours)
                phases.Add(("steady: with the pipeline", ours));
        }
        return phases;
    }

    private static void RenderSteady(StringBuilder md, SteadyStateResult? s)
    {
        if (s is null)
        {
            Line(md, "Steady state: not run.");
            Line(md);
            return;
        }
        if (s.Error is not null)
        {
            Line(md, $"Steady state: **failed: {s.Error}**");
            Line(md);
            return;
        }
        Line(md, $"Steady state ({s.Seconds} s, pgbench {(s.Rate is { } rate ? $"at {rate:N0} tps" : "unthrottled")}, {s.Clients} clients): {s.TpsWithout:N0} tps without a consumer, "
            + $"{s.TpsWithPgRecvLogical:N0} tps with pg_recvlogical consuming ({F(s.PgRecvLogicalTpsRatio * 100, "F0", " %")}: logical decoding alone), "
            + $"{s.TpsWith:N0} tps with the pipeline consuming ({F(s.TpsRatio * 100, "F0", " %")}); "
            + $"{s.ChangesCommitted:N0} changes committed in {s.Batches:N0} batches, caught up {s.CatchUpSeconds:F1} s after pgbench stopped.");
        Line(md);
        Line(md, "| during the run | p50 | p99 | max |");
        Line(md, "|---|---:|---:|---:|");
        Row(md, "replication lag, bytes", s.LagBytes, "N0");
        Row(md, "replication lag, s", s.LagSeconds, "F3");
        Row(md, "commit-to-changelog latency, ms", s.LatencyMilliseconds, "F1");
        Line(md);
        var charts = ReportCharts.Of(s);
        if (charts.Count > 0)
        {
            Line(md, $"Over time, sampled every 100 ms from pgbench's start until the pipeline caught up ({s.Timeline.Count:N0} samples, in `steadyState.timeline` of the JSON report):");
            Line(md);
            foreach (var chart in charts)
            {
                Line(md, $"![{chart.AltText}]({chart.FileName})");
                Line(md);
            }
        }
        if (s.WalsenderCpuSeconds is null && s.PgRecvLogicalWalsenderCpuSeconds is null)
            return;
        Line(md, "| walsender, steady state | changes | CPU s | CPU s per 1M changes |");
        Line(md, "|---|---:|---:|---:|");
        Line(md, $"| serving pg_recvlogical (until it had sent everything) | {s.PgRecvLogicalChanges:N0} | {Walsender(s.PgRecvLogicalWalsenderCpuSeconds, s.PgRecvLogicalWalsenderProcesses)} | {F(s.PgRecvLogicalWalsenderCpuSecondsPerMillionChanges, "F1")} |");
        Line(md, $"| serving the pipeline (until it caught up) | {s.ChangesCommitted:N0} | {Walsender(s.WalsenderCpuSeconds, s.WalsenderProcesses)} | {F(s.WalsenderCpuSecondsPerMillionChanges, "F1")} |");
        Line(md);
    }

    private static void RenderIdle(StringBuilder md, IdleResult? idle)
    {
        if (idle is null)
            return;
        if (idle.Error is not null)
        {
            Line(md, $"Idle phase: **failed: {idle.Error}**");
            Line(md);
            return;
        }
        Line(md, $"Idle phase ({idle.Seconds} s, the databases vacuumed, then the pipeline running after one source transaction it committed, nothing else writing):");
        Line(md);
        Line(md, "| idle | total | per s |");
        Line(md, "|---|---:|---:|");
        Line(md, $"| WAL written, bytes | {idle.WalBytes:N0} | {F(idle.WalBytesPerSecond, "N0")} |");
        Line(md, $"| changelog batches committed (source transactions / changes) | {idle.Batches:N0} ({idle.Transactions:N0} / {idle.ChangesCommitted:N0}) | {F(idle.BatchesPerSecond, "F1")} |");
        Line(md, $"| persisted-position moves (advance, bytes) | {idle.PositionMoves:N0} ({idle.PositionAdvanceBytes:N0}) | {F(idle.PositionMovesPerSecond, "F1")} |");
        Line(md, $"| position writes, server count | {idle.PositionWrites:N0} | {(double)idle.PositionWrites / idle.Seconds:F1} |");
        Line(md, $"| walsender CPU s | {Walsender(idle.WalsenderCpuSeconds, idle.WalsenderProcesses)} | {F(idle.WalsenderCpuSeconds / idle.Seconds, "F3")} |");
        Line(md);
        Line(md, idle.Autovacuum.Count == 0
            ? "No autovacuum worker was seen during the window."
            : $"Autovacuum during the window (its WAL is in the figure): {string.Join("; ", idle.Autovacuum)}.");
        Line(md);
        if (idle.Reconnects > 0)
        {
            Line(md, $"The pipeline reconnected {idle.Reconnects} times during the idle phase.");
            Line(md);
        }
    }

    /// <summary>Walsender CPU seconds, with the number of walsenders when a reconnect started more than one.</summary>
    private static string Walsender(double? seconds, int? processes)
        => F(seconds, "F2") + (processes > 1 ? $" ({processes} walsenders)" : "");

    private static void Row(StringBuilder md, string name, Percentiles? p, string format)
        => Line(md, p is null ? $"| {name} | | | |" : $"| {name} | {F(p.P50, format)} | {F(p.P99, format)} | {F(p.Max, format)} |");

    private static string F(double? value, string format, string unit = "")
        => value is { } v ? v.ToString(format, CultureInfo.InvariantCulture) + unit : "";

    private static void Line(StringBuilder md, string text = "") => md.Append(text).Append('\n');
}
