using Synchro.Pipeline.LoadHarness.Reporting;
using Synchro.Pipeline.LoadHarness.ServerCost;

namespace Synchro.Pipeline.Tests.Bench;

/// <summary>The load harness's server-side figures: process classification, /proc arithmetic, pg_waldump parsing and the per-change report.</summary>
public sealed class ServerCostTests
{
    private static readonly IReadOnlySet<string> s_writers = new HashSet<string> { "synchro-bench-writer" };

    [Theory]
    [InlineData("client backend", "synchro-bench-writer", ServerProcessKind.Writer)]
    [InlineData("client backend", "pgbench", ServerProcessKind.OtherBackends)]
    [InlineData("client backend", "", ServerProcessKind.OtherBackends)]
    [InlineData("client backend", null, ServerProcessKind.OtherBackends)]
    [InlineData("parallel worker", "synchro-bench-writer", ServerProcessKind.Writer)]
    [InlineData("background worker", null, ServerProcessKind.OtherBackends)]
    // The pipeline's replication connection carries the writer's name: it is still the walsender.
    [InlineData("walsender", "synchro-bench-writer", ServerProcessKind.Walsender)]
    [InlineData("walsender", "pg_recvlogical", ServerProcessKind.Walsender)]
    [InlineData("walwriter", null, ServerProcessKind.WalWriter)]
    [InlineData("checkpointer", null, ServerProcessKind.Checkpointer)]
    [InlineData("background writer", null, ServerProcessKind.BackgroundWriter)]
    [InlineData("autovacuum launcher", null, ServerProcessKind.Autovacuum)]
    [InlineData("autovacuum worker", null, ServerProcessKind.Autovacuum)]
    [InlineData("logical replication launcher", null, ServerProcessKind.OtherProcesses)]
    [InlineData("io worker", null, ServerProcessKind.OtherProcesses)]
    [InlineData("archiver", null, ServerProcessKind.OtherProcesses)]
    public void A_process_is_classified_by_backend_type_then_by_application_name(string backendType, string? application, string expected)
        => Assert.Equal(expected, ServerProcessKind.Classify(backendType, application, s_writers, "sampler"));

    [Fact]
    public void The_samplers_own_backend_is_not_counted()
        => Assert.Null(ServerProcessKind.Classify("client backend", "sampler", s_writers, "sampler"));

    [Fact]
    public void A_stat_line_is_read_after_the_last_parenthesis_of_its_command()
    {
        // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime cutime cstime priority nice threads itreal starttime vsize
        var stat = ProcStat.Parse("4242 (postgres: (x) y) S 100 4242 4242 0 -1 4194560 900 0 3 0 150 52 0 0 20 0 1 0 777001 224000000 2000");
        Assert.Equal(new ProcStat(100, 202, 777001), stat);
        Assert.Throws<FormatException>(() => ProcStat.Parse("not a stat line"));
        Assert.Throws<FormatException>(() => ProcStat.Parse("1 (x) S 0 1 1"));
    }

    [Fact]
    public void The_ledger_counts_a_process_from_its_first_reading_or_from_zero_when_it_started_during_the_phase()
    {
        var ledger = new CpuLedger(phaseStartTicks: 1_000);
        // Running before the phase: 500 ticks already, 650 at the end.
        ledger.Observe(10, ServerProcessKind.Checkpointer, new ProcStat(1, 500, 200));
        ledger.Observe(10, ServerProcessKind.Checkpointer, new ProcStat(1, 650, 200));
        // Started during the phase: all of its 120 ticks count.
        ledger.Observe(11, ServerProcessKind.Writer, new ProcStat(1, 20, 1_500));
        ledger.Observe(11, ServerProcessKind.Writer, new ProcStat(1, 120, 1_500));
        ledger.Observe(12, ServerProcessKind.Writer, new ProcStat(1, 80, 1_600));
        // Seen as a postmaster child first, then listed as a walsender: all of it is the walsender's.
        ledger.Observe(13, ServerProcessKind.OtherProcesses, new ProcStat(1, 5, 1_700));
        ledger.Observe(13, ServerProcessKind.Walsender, new ProcStat(1, 45, 1_700));

        var (seconds, processes) = ledger.Totals(ticksPerSecond: 100);
        Assert.Equal(ServerProcessKind.All.Select(k => k.Kind), seconds.Keys);
        Assert.Equal(1.5, seconds[ServerProcessKind.Checkpointer], 9);
        Assert.Equal(2.0, seconds[ServerProcessKind.Writer], 9);
        Assert.Equal(2, processes[ServerProcessKind.Writer]);
        Assert.Equal(0.45, seconds[ServerProcessKind.Walsender], 9);
        Assert.Equal(0.0, seconds[ServerProcessKind.OtherProcesses]);
        Assert.Equal(0, processes[ServerProcessKind.OtherProcesses]);
        Assert.Equal(ServerProcessKind.Walsender, ledger.KindOf(13));
        Assert.Null(ledger.KindOf(99));
    }

    [Fact]
    public void The_figures_are_per_million_changes_and_per_change()
    {
        var cost = Cost();
        Assert.Equal(12.0, cost.CpuSecondsPerMillionChanges[ServerProcessKind.Writer], 9);
        Assert.Equal(5.0, cost.CpuSecondsPerMillionChanges[ServerProcessKind.Walsender], 9);
        Assert.Equal(4.5, cost.TotalCpuSeconds, 9);
        Assert.Equal(18.0, cost.TotalCpuSecondsPerMillionChanges!.Value, 9);
        Assert.Equal(870.0, cost.WalBytesPerChange!.Value, 9);
        Assert.Equal(0.2, cost.FullPageImagesPerChange!.Value, 9);
        Assert.Equal(0.25, cost.FullPageImageShare!.Value, 9);
        Assert.Null((cost with { Changes = 0 }).WalBytesPerChange);
        Assert.Empty((cost with { Changes = 0 }).CpuSecondsPerMillionChanges);
    }

    [Fact]
    public void The_total_line_of_pg_waldump_stats_is_parsed_and_other_lines_are_not()
    {
        Assert.Equal(new WalDumpTotals(1_234_567, 98_765_432, 32_921_810, 131_687_242), WalDump.ParseTotals(
            "Total                                                 1234567                       98765432 [75.00%]                 32921810 [25.00%]                131687242 [100%]"));
        Assert.Null(WalDump.ParseTotals("Heap/INSERT                                            400000 ( 32.40)                 28800000 ( 29.16)                 1200000 (  3.64)                 30000000 ( 22.78)"));
        Assert.Null(WalDump.ParseTotals("Type                                           N      (%)          Record size      (%)             FPI size      (%)        Combined size      (%)"));
        Assert.Equal(0.25, new WalDumpTotals(1, 3, 1, 4).FullPageImageShare);
    }

    [Fact]
    public void A_record_counts_for_the_relation_of_its_first_block_with_its_images_bytes()
    {
        var insert = WalDump.ParseRecord("rmgr: Btree       len (rec/tot):     64/  8256, tx:        741, lsn: 0/0301A2B0, prev 0/0301A270, desc: INSERT_LEAF off 12, blkref #0: rel 1663/16384/16402 blk 7 FPW");
        Assert.Equal(("16384/16402", 8256L, 8192L, 1), insert!.Value);
        var twoBlocks = WalDump.ParseRecord("rmgr: Heap        len (rec/tot):     72/    72, tx:        742, lsn: 0/0301C2F8, prev 0/0301C2B0, desc: HOT_UPDATE off 3 xmax 742, blkref #0: rel 1663/16384/16390 blk 0, blkref #1: rel 1663/16384/16395 blk 2");
        Assert.Equal(("16384/16390", 72L, 0L, 0), twoBlocks!.Value);
        var commit = WalDump.ParseRecord("rmgr: Transaction len (rec/tot):     34/    34, tx:        742, lsn: 0/0301C340, prev 0/0301C2F8, desc: COMMIT 2026-12-06 14:00:00.000000 UTC");
        Assert.Equal(("rmgr:Transaction", 34L, 0L, 0), commit!.Value);
        Assert.Null(WalDump.ParseRecord("pg_waldump: error: could not find a valid record after 0/3000000"));
    }

    [Fact]
    public void The_markdown_shows_each_phase_per_million_changes_and_its_wal_by_relation()
    {
        var cost = Cost() with
        {
            WalByRelation = [new WalRelationShare("bench: sync_changelog", 300_000, 100_000_000, 25_000_000, 3_000), new WalRelationShare("rmgr:Transaction", 80_000, 2_720_000, 0, 0)],
        };
        var md = ServerCostMarkdown.Render([("ours_end_to_end", cost)]);
        var row = md.Split('\n').Single(l => l.StartsWith("| ours_end_to_end |", StringComparison.Ordinal));
        // Writer 12.00, walsender 5.00 per 1M; 870 B/change; 25 % images.
        Assert.Contains("| 250,000 | 10.0 | 12.00 | 5.00 | 0.00 |", row, StringComparison.Ordinal);
        Assert.Contains("| 18.00 | 217.5 | 870 |", row, StringComparison.Ordinal);
        Assert.Contains("| 25.0 % |", row, StringComparison.Ordinal);
        Assert.Contains("| bench: sync_changelog | 300,000 | 100.0 | 400 | 3,000 | 25.0 | 97.4 % |", md, StringComparison.Ordinal);
        Assert.Equal("", ServerCostMarkdown.Render([]));
    }

    private static ServerCostResult Cost()
    {
        var seconds = ServerProcessKind.All.ToDictionary(k => k.Kind, _ => 0.0);
        seconds[ServerProcessKind.Writer] = 3.0;
        seconds[ServerProcessKind.Walsender] = 1.25;
        seconds[ServerProcessKind.OtherBackends] = 0.25;
        return new ServerCostResult
        {
            Seconds = 10,
            Changes = 250_000,
            CpuSeconds = seconds,
            WalBytes = 217_500_000,
            StatsWalRecords = 600_000,
            StatsWalFpi = 50_000,
            WalDump = new WalDumpTotals(600_000, 150_000_000, 50_000_000, 200_000_000),
        };
    }
}
