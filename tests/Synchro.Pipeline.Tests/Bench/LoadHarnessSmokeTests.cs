using System.Diagnostics;
using System.Text.Json;

namespace Synchro.Pipeline.Tests.Bench;

/// <summary>
/// The load harness (built next to the tests through the project reference) run as a process in a tiny
/// configuration: it must finish, write its JSON, and every contender must have drained exactly the backlog.
/// Performance is the harness's report, never asserted here.
/// </summary>
public sealed class LoadHarnessSmokeTests
{
    // Measured at about 15 s on a 2-core machine; this only bounds a hang.
    private static readonly TimeSpan s_timeout = TimeSpan.FromMinutes(3);

    [Fact]
    public async Task Runs_every_contender_over_the_same_backlog()
    {
        var output = Directory.CreateTempSubdirectory("synchro-load-harness-");
        try
        {
            var (root, log) = await RunAsync(output, "--changes", "3000", "--steady-seconds", "3", "--go-changes", "300", "--big-transaction", "2000");
            var backlogChanges = root.GetProperty("backlog").GetProperty("changes").GetInt64();
            Assert.InRange(backlogChanges, 2_900, 3_100);
            var contenders = root.GetProperty("contenders").EnumerateArray().ToDictionary(c => c.GetProperty("name").GetString()!);
            foreach (var (name, contender) in contenders)
                Assert.False(contender.TryGetProperty("error", out var error), $"{name}: {error}\n{log}");

            Assert.True(contenders["pg_recvlogical"].GetProperty("reachedEnd").GetBoolean());
            foreach (var name in new[] { "npgsql_pgoutput", "ours_read_only", "ours_end_to_end" })
            {
                Assert.True(contenders[name].GetProperty("reachedEnd").GetBoolean(), name);
                Assert.Equal(backlogChanges, contenders[name].GetProperty("changes").GetInt64());
            }
            Assert.Equal(300, contenders["go_per_change"].GetProperty("changes").GetInt64());

            var written = contenders["ours_end_to_end"];
            var copied = contenders["binary_copy"];
            Assert.True(written.GetProperty("changelogRows").GetInt64() >= backlogChanges);
            Assert.Equal(written.GetProperty("changelogRows").GetInt64(), copied.GetProperty("changelogRows").GetInt64());
            Assert.Equal(written.GetProperty("edgeRows").GetInt64(), copied.GetProperty("edgeRows").GetInt64());

            var steady = root.GetProperty("steadyState");
            Assert.False(steady.TryGetProperty("error", out var steadyError), steadyError.ToString());
            Assert.True(steady.GetProperty("tpsWith").GetDouble() > 0);
            Assert.True(steady.GetProperty("tpsWithPgRecvLogical").GetDouble() > 0);
            // The timeline behind the charts, and the charts beside the Markdown that embeds them.
            var timeline = steady.GetProperty("timeline").EnumerateArray().ToList();
            Assert.True(timeline.Count >= 10, log);
            Assert.Equal(steady.GetProperty("changesCommitted").GetInt64(), timeline[^1].GetProperty("changesCommitted").GetInt64());
            Assert.Equal(1.0, steady.GetProperty("latencyCdf").EnumerateArray().Last().GetProperty("fraction").GetDouble());
            var markdown = await File.ReadAllTextAsync(Path.Combine(output.FullName, "load-harness.md"));
            foreach (var chart in new[] { "load-harness-throughput.svg", "load-harness-lag-time.svg", "load-harness-lag-bytes.svg", "load-harness-latency.svg" })
            {
                Assert.Contains($"]({chart})", markdown, StringComparison.Ordinal);
                Assert.Equal("svg", System.Xml.Linq.XDocument.Load(Path.Combine(output.FullName, chart)).Root!.Name.LocalName);
            }

            // One 2,000-row transaction: one changelog row and one edge per inserted order.
            var big = root.GetProperty("bigTransaction");
            Assert.False(big.TryGetProperty("error", out var bigError), $"{bigError}\n{log}");
            Assert.Equal("ours_big_transaction", big.GetProperty("name").GetString());
            Assert.True(big.GetProperty("reachedEnd").GetBoolean());
            Assert.Equal(2_000, big.GetProperty("changes").GetInt64());
            Assert.Equal(2_000, big.GetProperty("changelogRows").GetInt64());
            Assert.True(File.Exists(Path.Combine(output.FullName, "load-harness.md")));

            // The walsender serving each of our pipeline's drains was found and read.
            Assert.True(written.GetProperty("walsenderProcesses").GetInt32() >= 1, log);
            Assert.True(written.GetProperty("walsenderCpuSeconds").GetDouble() >= 0);
            Assert.True(steady.GetProperty("walsenderProcesses").GetInt32() >= 1, log);
            Assert.False(root.TryGetProperty("idle", out _));

            // The server's side: the pipeline's writer backend and walsender found, the WAL of its drain counted, per change of the backlog;
            // the COPY baseline's per change of the same backlog.
            var cost = written.GetProperty("serverCost");
            Assert.True(cost.GetProperty("processes").GetProperty("writer").GetInt32() >= 1, log);
            Assert.True(cost.GetProperty("processes").GetProperty("walsender").GetInt32() >= 1, log);
            Assert.True(cost.GetProperty("cpuSeconds").GetProperty("writer").GetDouble() >= 0);
            Assert.True(cost.GetProperty("walBytes").GetInt64() > 0, log);
            Assert.Equal(backlogChanges, cost.GetProperty("changes").GetInt64());
            var copyCost = copied.GetProperty("serverCost");
            Assert.Equal(backlogChanges, copyCost.GetProperty("changes").GetInt64());
            Assert.True(copyCost.GetProperty("processes").GetProperty("writer").GetInt32() >= 1, log);
            Assert.True(copyCost.GetProperty("walBytes").GetInt64() > 0, log);
            Assert.True(steady.GetProperty("serverCost").GetProperty("processes").GetProperty("writer").GetInt32() >= 1, log);
            Assert.True(steady.GetProperty("withoutServerCost").GetProperty("walBytes").GetInt64() > 0, log);
            Assert.Contains("| ours_end_to_end |", markdown.Split("Server side")[1], StringComparison.Ordinal);
        }
        finally
        {
            output.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task Runs_with_the_changelog_in_the_source_and_an_idle_phase()
    {
        var output = Directory.CreateTempSubdirectory("synchro-load-harness-");
        try
        {
            var (root, log) = await RunAsync(output, "--changes", "3000", "--steady-seconds", "0", "--go-changes", "300", "--big-transaction", "2000",
                "--changelog-in-source", "--publication", "all-tables", "--idle-seconds", "2");
            var options = root.GetProperty("options");
            Assert.True(options.GetProperty("changelogInSource").GetBoolean());
            Assert.Equal("all-tables", options.GetProperty("publication").GetString());

            var backlogChanges = root.GetProperty("backlog").GetProperty("changes").GetInt64();
            var contenders = root.GetProperty("contenders").EnumerateArray().ToDictionary(c => c.GetProperty("name").GetString()!);
            foreach (var (name, contender) in contenders)
                Assert.False(contender.TryGetProperty("error", out var error), $"{name}: {error}\n{log}");
            var written = contenders["ours_end_to_end"];
            Assert.Equal(backlogChanges, written.GetProperty("changes").GetInt64());
            Assert.True(written.GetProperty("changelogRows").GetInt64() >= backlogChanges);
            Assert.Equal(written.GetProperty("changelogRows").GetInt64(), contenders["binary_copy"].GetProperty("changelogRows").GetInt64());
            Assert.True(written.GetProperty("walsenderProcesses").GetInt32() >= 1, log);

            // The source's changelog holds the backlog's rows too: the big transaction counts only its own.
            var big = root.GetProperty("bigTransaction");
            Assert.False(big.TryGetProperty("error", out var bigError), $"{bigError}\n{log}");
            Assert.Equal(2_000, big.GetProperty("changelogRows").GetInt64());

            // Figures, not asserted beyond their presence: whether the position loop runs is what the phase reports.
            var idle = root.GetProperty("idle");
            Assert.False(idle.TryGetProperty("error", out var idleError), $"{idleError}\n{log}");
            Assert.Equal(2, idle.GetProperty("seconds").GetInt32());
            Assert.True(idle.GetProperty("walBytes").GetInt64() >= 0);
            Assert.Equal(0, idle.GetProperty("changesCommitted").GetInt64());
            Assert.True(idle.GetProperty("walsenderProcesses").GetInt32() >= 1, log);
            Assert.Contains("Idle phase", await File.ReadAllTextAsync(Path.Combine(output.FullName, "load-harness.md")), StringComparison.Ordinal);
        }
        finally
        {
            output.Delete(recursive: true);
        }
    }

    [Fact]
    public async Task Compaction_verb_removes_what_a_window_count_expects_and_times_the_writer_both_ways()
    {
        var output = Directory.CreateTempSubdirectory("synchro-load-harness-");
        try
        {
            var (root, log) = await RunReportAsync(output, "compaction.json", "compaction", "--changes", "6000", "--writer-changes", "1500", "--reader-pages", "20");
            var expected = root.GetProperty("expected");
            var compaction = root.GetProperty("compaction");
            var removed = compaction.GetProperty("rowsRemoved").GetInt64();
            Assert.Equal(expected.GetProperty("superseded").GetInt64() + expected.GetProperty("expiredDeletes").GetInt64(), removed);
            // The older half is past the retention, so both kinds are removed; the library counts what the changelog lost.
            Assert.True(expected.GetProperty("superseded").GetInt64() > 0 && expected.GetProperty("expiredDeletes").GetInt64() > 0, log);
            Assert.Equal(removed, compaction.GetProperty("libraryResult").GetProperty("rowsRemoved").GetInt64());
            Assert.Equal(root.GetProperty("before").GetProperty("rows").GetInt64() - removed, root.GetProperty("afterCompaction").GetProperty("rows").GetInt64());
            Assert.True(compaction.GetProperty("walBytes").GetInt64() > 0);
            Assert.True(compaction.GetProperty("usage").GetProperty("backends").GetInt32() >= 1, log);

            var writer = root.GetProperty("writer");
            var alone = writer.GetProperty("alone");
            var beside = writer.GetProperty("withCompaction");
            Assert.True(alone.GetProperty("reachedEnd").GetBoolean() && beside.GetProperty("reachedEnd").GetBoolean(), log);
            Assert.Equal(alone.GetProperty("changes").GetInt64(), beside.GetProperty("changes").GetInt64());
            Assert.True(writer.GetProperty("ratio").GetDouble() > 0);

            var reader = root.GetProperty("reader").EnumerateArray().ToList();
            Assert.Equal([1, 10, 300], reader.Select(r => r.GetProperty("buckets").GetInt32()));
            Assert.All(reader, r => Assert.Equal(20, r.GetProperty("pages").GetInt32()));
            Assert.Contains("Writer throughput", await File.ReadAllTextAsync(Path.Combine(output.FullName, "compaction.md")), StringComparison.Ordinal);
        }
        finally
        {
            output.Delete(recursive: true);
        }
    }

    private static Task<(JsonElement Report, string Log)> RunAsync(DirectoryInfo output, params string[] arguments)
        => RunReportAsync(output, "load-harness.json", arguments);

    /// <summary>Runs the harness with <paramref name="arguments"/> into <paramref name="output"/>; it must exit 0. Returns its JSON report <paramref name="report"/> and its output.</summary>
    private static async Task<(JsonElement Report, string Log)> RunReportAsync(DirectoryInfo output, string report, params string[] arguments)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "Synchro.Pipeline.LoadHarness.dll"));
        foreach (var argument in arguments.Concat(["--out", output.FullName]))
            start.ArgumentList.Add(argument);
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using (var limit = new CancellationTokenSource(s_timeout))
        {
            try
            {
                await process.WaitForExitAsync(limit.Token);
            }
            catch (OperationCanceledException)
            {
                process.Kill(entireProcessTree: true);
                Assert.Fail($"the harness did not finish in {s_timeout.TotalMinutes} minutes:\n{await stderr}");
            }
        }
        var log = $"stdout:\n{await stdout}\nstderr:\n{await stderr}";
        Assert.True(process.ExitCode == 0, $"exit {process.ExitCode}\n{log}");
        using var json = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(output.FullName, report)));
        return (json.RootElement.Clone(), log);
    }
}
