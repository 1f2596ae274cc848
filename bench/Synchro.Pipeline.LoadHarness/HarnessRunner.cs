using System.Runtime.InteropServices;
using System.Text.Json;
using Npgsql;
using Synchro.Pipeline.LoadHarness.Backlog;
using Synchro.Pipeline.LoadHarness.Contenders;
using Synchro.Pipeline.LoadHarness.Idle;
using Synchro.Pipeline.LoadHarness.Reporting;
using Synchro.Pipeline.LoadHarness.ServerCost;
using Synchro.Pipeline.LoadHarness.Statements;
using Synchro.Pipeline.LoadHarness.SteadyState;
using Synchro.Pipeline.LoadHarness.Walsender;
using Synchro.Pipeline.LocalPostgres;

namespace Synchro.Pipeline.LoadHarness;

/// <summary>
/// The whole run on a throwaway server: backlog, one child process per contender in a fixed order,
/// the COPY baseline, the steady state, the big transaction, the idle phase, then the JSON and Markdown reports and the steady state's SVG charts beside them.
/// </summary>
/// <remarks>
/// Every phase that reads a slot also reports the CPU of the walsender serving it (<see cref="WalsenderCpu"/>), read by
/// this process while the contender's own process runs. With <see cref="HarnessOptions.ChangelogInSource"/> our pipeline
/// writes into the source database in every phase; the Go design and the COPY baseline keep databases of their own.
/// </remarks>
internal static class HarnessRunner
{
    public const string JsonFile = "load-harness.json";
    public const string MarkdownFile = "load-harness.md";

    // Time limits per contender: generous floors, then the rate a contender far slower than expected would still reach.
    private static readonly TimeSpan s_minimumTimeout = TimeSpan.FromMinutes(2);
    internal const double SlowestDrainChangesPerSecond = 2_000;
    private const double SlowestGoChangesPerSecond = 50;

    public static async Task<int> RunAsync(HarnessOptions options, CancellationToken ct)
    {
        var startedAt = DateTimeOffset.UtcNow;
        Progress("starting a throwaway PostgreSQL server");
        await using var server = await StartServerAsync(options, ct);
        var source = await server.CreateDatabaseAsync(BenchSchema.Database, ct);
        await BenchSchema.CreateAsync(source, options.Publication, ct);

        Progress($"generating a backlog of {options.Changes:N0} changes with pgbench");
        var backlog = await BacklogGenerator.GenerateAsync(HarnessRunner.ClientDirectory(server), source, ContenderNames.Draining.Select(ContenderNames.Slot), options.Changes, ct);
        Progress($"backlog: {backlog.Changes:N0} changes in {backlog.Transactions:N0} transactions, {backlog.WalBytes / 1e6:N0} MB of WAL, {backlog.PgoutputBytes / 1e6:N0} MB of pgoutput, end {backlog.EndLsn}");

        var probe = await ProbeAsync(server, source, options, ct);
        var drainTimeout = Scale(options, backlog.Changes / SlowestDrainChangesPerSecond);
        var goChanges = Math.Min(options.GoChanges, backlog.Changes);
        var results = new List<ContenderResult>();

        Progress($"draining with {ContenderNames.PgRecvLogical}");
        results.Add(await WithServerCostAsync(probe, () => WithWalsenderAsync(source, ContenderNames.Slot(ContenderNames.PgRecvLogical),
            () => PgRecvLogicalContender.RunAsync(HarnessRunner.ClientDirectory(server), source, backlog, drainTimeout, ct), ct), ct));
        results.Add(await DrainAsync(ContenderNames.Npgsql, null, 0, drainTimeout));
        results.Add(await DrainAsync(ContenderNames.OursReadOnly, await ChangelogAsync("changelog_read_only"), 0, drainTimeout));
        var endToEndChangelog = await ChangelogAsync("changelog_end_to_end");
        var endToEnd = await DrainAsync(ContenderNames.OursEndToEnd, endToEndChangelog, 0, drainTimeout);
        results.Add(endToEnd);
        results.Add(await DrainAsync(ContenderNames.GoPerChange, await server.CreateDatabaseAsync("changelog_go", ct), goChanges, Scale(options, goChanges / SlowestGoChangesPerSecond)));

        Progress($"{ContenderNames.BinaryCopy}: storing the rows {ContenderNames.OursEndToEnd} wrote into empty tables");
        // The target database is created before the measured window: CREATE DATABASE writes WAL of its own.
        var copySpec = Spec(ContenderNames.BinaryCopy, endToEndChangelog ?? source, 0) with { CopyTargetConnectionString = await server.CreateDatabaseAsync("changelog_copy", ct) };
        results.Add(endToEnd.Succeeded
            ? await WithServerCostAsync(probe, () => ContenderProcess.RunAsync(copySpec, drainTimeout, ct), ct, changes: endToEnd.Changes)
            : new ContenderResult { Name = ContenderNames.BinaryCopy, Error = $"not run: {ContenderNames.OursEndToEnd} failed" });
        await BacklogGenerator.DropSlotsAsync(source, ContenderNames.Draining.Select(ContenderNames.Slot), ct);

        SteadyStateResult? steady = null;
        if (options.SteadySeconds > 0)
        {
            Progress($"steady state: pgbench for {options.SteadySeconds} s without a consumer, with pg_recvlogical, then with the pipeline consuming");
            try
            {
                // The steady state's pipeline runs in this process: --traced records its spans here.
                using var spans = options.Traced ? PipelineContender.RecordSpans() : null;
                steady = await SteadyStateRunner.RunAsync(HarnessRunner.ClientDirectory(server), source, await ChangelogAsync("changelog_steady"),
                    options.SteadySeconds, options.SteadyClients, Scale(options, options.SteadySeconds * 10.0), ct, options.BinaryTuples, options.FilterOriginsOnServer, probe, options.SteadyRate);
            }
            catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
            {
                Progress($"steady state failed: {e}");
                steady = new SteadyStateResult { Seconds = options.SteadySeconds, Clients = options.SteadyClients, Rate = options.SteadyRate, Error = $"{e.GetType().Name}: {e.Message}" };
            }
        }

        ContenderResult? bigTransaction = null;
        if (options.BigTransactionRows > 0)
        {
            Progress($"{ContenderNames.OursBigTransaction}: one transaction inserting {options.BigTransactionRows:N0} rows, drained end to end");
            var stop = await BigTransaction.GenerateAsync(source, options.BigTransactionRows, ct);
            var spec = new ContenderSpec
            {
                Name = ContenderNames.OursEndToEnd,
                SourceConnectionString = source,
                ChangelogConnectionString = await ChangelogAsync("changelog_big_transaction"),
                SlotName = BigTransaction.Slot,
                PublicationName = BenchSchema.Publication,
                StopLsn = stop,
                BinaryTuples = options.BinaryTuples,
                FilterOriginsOnServer = options.FilterOriginsOnServer,
            };
            bigTransaction = await WithServerCostAsync(probe, () => WithWalsenderAsync(source, BigTransaction.Slot,
                () => ContenderProcess.RunAsync(spec, Scale(options, options.BigTransactionRows / SlowestDrainChangesPerSecond), ct), ct), ct) with
            {
                Name = ContenderNames.OursBigTransaction,
            };
            await BacklogGenerator.DropSlotsAsync(source, [BigTransaction.Slot], ct);
        }

        IdleResult? idle = null;
        if (options.IdleSeconds > 0)
        {
            Progress($"idle: the pipeline running for {options.IdleSeconds} s with nothing else writing");
            try
            {
                idle = await IdleRunner.RunAsync(source, await ChangelogAsync("changelog_idle"), options.IdleSeconds, Scale(options, 60), options.BinaryTuples, options.FilterOriginsOnServer, ct);
            }
            catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
            {
                Progress($"idle phase failed: {e}");
                idle = new IdleResult { Seconds = options.IdleSeconds, Error = $"{e.GetType().Name}: {e.Message}" };
            }
        }

        var report = new HarnessReport
        {
            StartedAt = startedAt,
            Machine = await MachineAsync(source, options, ct),
            Options = options,
            Backlog = backlog,
            Contenders = results,
            SteadyState = steady,
            BigTransaction = bigTransaction,
            Idle = idle,
        };
        report = report with { Goals = GoalTable.Evaluate(report) };
        var markdown = MarkdownReport.Render(report);
        Directory.CreateDirectory(options.OutputDirectory);
        await File.WriteAllTextAsync(Path.Combine(options.OutputDirectory, JsonFile), JsonSerializer.Serialize(report, HarnessJson.Indented), ct);
        await File.WriteAllTextAsync(Path.Combine(options.OutputDirectory, MarkdownFile), markdown, ct);
        var charts = ReportCharts.Of(steady);
        foreach (var chart in charts)
            await File.WriteAllTextAsync(Path.Combine(options.OutputDirectory, chart.FileName), chart.Svg, ct);
        Console.Write(markdown);
        Progress($"wrote {Path.Combine(options.OutputDirectory, JsonFile)}, {MarkdownFile}" + string.Concat(charts.Select(c => ", " + c.FileName)));
        foreach (var stopped in results.Append(bigTransaction).OfType<ContenderResult>().Where(r => r.StopError is not null))
            Progress($"WARNING {stopped.Name} reached the end, then failed while stopping: {stopped.StopError}");
        foreach (var failed in results.Append(bigTransaction).OfType<ContenderResult>().Where(r => !r.Succeeded))
            Progress($"FAILED {failed.Name}: {failed.Error}");
        return report.AllSucceeded ? 0 : 1;

        ContenderSpec Spec(string name, string? changelog, long maxChanges) => new()
        {
            Name = name,
            SourceConnectionString = source,
            ChangelogConnectionString = changelog,
            SlotName = ContenderNames.Slot(name),
            PublicationName = BenchSchema.Publication,
            StopLsn = backlog.LastCommitEndLsn,
            MaxChanges = maxChanges,
            BinaryTuples = options.BinaryTuples,
            FilterOriginsOnServer = options.FilterOriginsOnServer,
        };

        // Our pipeline's changelog: a database of its own per phase, or (null) the source database.
        async Task<string?> ChangelogAsync(string database)
            => options.ChangelogInSource ? null : await server.CreateDatabaseAsync(database, ct);

        async Task<ContenderResult> DrainAsync(string name, string? changelog, long maxChanges, TimeSpan timeout)
        {
            Progress($"draining with {name}");
            var spec = Spec(name, changelog, maxChanges);
            var result = await WithServerCostAsync(probe, () => WithWalsenderAsync(source, spec.SlotName, () => ContenderProcess.RunAsync(spec, timeout, ct), ct), ct);
            if (result.Succeeded && result.ReachedEnd)
            {
                result = result with { PgoutputBytes = backlog.PgoutputBytes };
                if (result.Changes != backlog.Changes)
                    Progress($"WARNING: {name} drained {result.Changes:N0} changes, the backlog has {backlog.Changes:N0}");
            }
            return result;
        }
    }

    /// <summary>Runs one contender while this process reads the CPU of the walsender serving <paramref name="slot"/>.</summary>
    internal static async Task<ContenderResult> WithWalsenderAsync(string source, string slot, Func<Task<ContenderResult>> run, CancellationToken ct)
    {
        await using var walsender = await WalsenderCpu.StartAsync(source, slot, ct);
        var result = await run();
        if (walsender is null)
            return result;
        var usage = await walsender.StopAsync(ct);
        if (usage.Processes > 1)
            Progress($"{result.Name}: {usage.Processes} walsenders served slot {slot} (pids {string.Join(", ", usage.Pids)}): a reconnect; their CPU is summed");
        return usage.Processes == 0 ? result : result with { WalsenderCpuSeconds = usage.CpuSeconds, WalsenderProcesses = usage.Processes };
    }

    /// <summary>
    /// Runs one contender while this process reads what the server spends (<see cref="ServerCostSampler"/>), per change
    /// of <paramref name="changes"/>, else of the changes the contender drained.
    /// </summary>
    internal static async Task<ContenderResult> WithServerCostAsync(ServerCostProbe probe, Func<Task<ContenderResult>> run, CancellationToken ct, long? changes = null)
    {
        await using var sampler = await ServerCostSampler.StartAsync(probe, ContenderNames.WriterApplications, ct);
        var result = await run();
        if (sampler is null || !result.Succeeded)
            return result;
        var cost = await sampler.StopAsync(changes ?? result.Changes, ct);
        if (cost.WalDumpError is not null)
            Progress($"WARNING {result.Name}: pg_waldump gave no figures: {cost.WalDumpError}");
        return result with { ServerCost = cost };
    }

    /// <summary>
    /// The server-cost probe of <paramref name="server"/>: pg_waldump of its major version when one is installed; with
    /// <see cref="HarnessOptions.Statements"/>, pg_stat_statements created in <paramref name="source"/>.
    /// </summary>
    internal static async Task<ServerCostProbe> ProbeAsync(LocalPostgresServer server, string source, HarnessOptions options, CancellationToken ct)
    {
        var dump = WalDump.Find(server.BinDirectory, server.ServerVersion, server.DataDirectory);
        if (dump is null)
            Progress($"no pg_waldump of PostgreSQL {server.ServerVersion} found: the report has no full-page-image share");
        if (options.Statements)
            await PgStatStatements.CreateAsync(source, ct);
        return new ServerCostProbe(source, dump, options.WalByRelation, options.Statements);
    }

    /// <summary>The throwaway server of the harness and the catch-up verb: <see cref="ServerOptions"/> of <paramref name="options"/>.</summary>
    internal static Task<LocalPostgresServer> StartServerAsync(HarnessOptions options, CancellationToken ct)
        => options.Statements ? PgStatStatements.StartServerAsync(ServerOptions(options), ct) : LocalPostgresServer.StartAsync(ServerOptions(options), ct);

    internal static TimeSpan Scale(HarnessOptions options, double seconds)
        => TimeSpan.FromSeconds(Math.Max(s_minimumTimeout.TotalSeconds, seconds) * options.TimeoutScale);

    /// <summary>The directory of pgbench and pg_recvlogical: beside the server's binaries, else the newest installed (the npm builds carry none).</summary>
    internal static string ClientDirectory(LocalPostgresServer server) => Path.GetDirectoryName(server.ClientProgram("pgbench"))!;

    /// <summary>The throwaway server's settings: the harness's, pg_stat_statements preloaded for <see cref="HarnessOptions.Statements"/>, then <see cref="HarnessOptions.ServerSettings"/> over them.</summary>
    internal static LocalPostgresOptions ServerOptions(HarnessOptions harness)
    {
        var options = new LocalPostgresOptions();
        // Room for a large backlog without checkpoints in the middle of a drain.
        options.Settings["max_wal_size"] = "8GB";
        options.Settings["checkpoint_timeout"] = "30min";
        if (harness.Statements)
            PgStatStatements.Preload(options);
        foreach (var (name, value) in harness.ServerSettings)
            options.Settings[name] = value;
        return options;
    }

    private static async Task<MachineFacts> MachineAsync(string connectionString, HarnessOptions options, CancellationToken ct)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(ct);
        await using var version = new NpgsqlCommand("SHOW server_version", connection);
        var command = "dotnet run -c Release --project bench/Synchro.Pipeline.LoadHarness -- " + options.CommandLine();
        return new MachineFacts(Environment.ProcessorCount, (string)(await version.ExecuteScalarAsync(ct))!, RuntimeInformation.OSDescription, RuntimeInformation.FrameworkDescription, command);
    }

    internal static void Progress(string message) => Console.Error.WriteLine($"[{DateTime.Now:HH:mm:ss}] {message}");
}
