using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using Npgsql;
using Synchro.Pipeline.LoadHarness.Backlog;
using Synchro.Pipeline.LoadHarness.Contenders;
using Synchro.Pipeline.LoadHarness.Reporting;
using Synchro.Pipeline.LoadHarness.SteadyState;
using Synchro.Pipeline.LocalPostgres;

namespace Synchro.Pipeline.LoadHarness;

/// <summary>
/// The whole run on a throwaway server: backlog, one child process per contender in a fixed order,
/// the COPY baseline, the steady state, then the JSON and Markdown reports.
/// </summary>
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
        await using var server = await LocalPostgresServer.StartAsync(ServerOptions(), ct);
        var source = await server.CreateDatabaseAsync(BenchSchema.Database, ct);
        await BenchSchema.CreateAsync(source, ct);

        Progress($"generating a backlog of {options.Changes:N0} changes with pgbench");
        var backlog = await BacklogGenerator.GenerateAsync(server.BinDirectory, source, ContenderNames.Draining.Select(ContenderNames.Slot), options.Changes, ct);
        Progress($"backlog: {backlog.Changes:N0} changes in {backlog.Transactions:N0} transactions, {backlog.WalBytes / 1e6:N0} MB of WAL, {backlog.PgoutputBytes / 1e6:N0} MB of pgoutput, end {backlog.EndLsn}");

        var drainTimeout = Scale(options, backlog.Changes / SlowestDrainChangesPerSecond);
        var goChanges = Math.Min(options.GoChanges, backlog.Changes);
        var results = new List<ContenderResult>();

        Progress($"draining with {ContenderNames.PgRecvLogical}");
        results.Add(await PgRecvLogicalContender.RunAsync(server.BinDirectory, source, backlog, drainTimeout, ct));
        results.Add(await DrainAsync(ContenderNames.Npgsql, null, 0, drainTimeout));
        results.Add(await DrainAsync(ContenderNames.OursReadOnly, await server.CreateDatabaseAsync("changelog_read_only", ct), 0, drainTimeout));
        var endToEndChangelog = await server.CreateDatabaseAsync("changelog_end_to_end", ct);
        var endToEnd = await DrainAsync(ContenderNames.OursEndToEnd, endToEndChangelog, 0, drainTimeout);
        results.Add(endToEnd);
        results.Add(await DrainAsync(ContenderNames.GoPerChange, await server.CreateDatabaseAsync("changelog_go", ct), goChanges, Scale(options, goChanges / SlowestGoChangesPerSecond)));

        Progress($"{ContenderNames.BinaryCopy}: storing the rows {ContenderNames.OursEndToEnd} wrote into empty tables");
        results.Add(endToEnd.Succeeded
            ? await ContenderProcess.RunAsync(Spec(ContenderNames.BinaryCopy, endToEndChangelog, 0) with
            {
                CopyTargetConnectionString = await server.CreateDatabaseAsync("changelog_copy", ct),
            }, drainTimeout, ct)
            : new ContenderResult { Name = ContenderNames.BinaryCopy, Error = $"not run: {ContenderNames.OursEndToEnd} failed" });
        await BacklogGenerator.DropSlotsAsync(source, ContenderNames.Draining.Select(ContenderNames.Slot), ct);

        SteadyStateResult? steady = null;
        if (options.SteadySeconds > 0)
        {
            Progress($"steady state: pgbench for {options.SteadySeconds} s without a consumer, with pg_recvlogical, then with the pipeline consuming");
            try
            {
                steady = await SteadyStateRunner.RunAsync(server.BinDirectory, source, await server.CreateDatabaseAsync("changelog_steady", ct),
                    options.SteadySeconds, options.SteadyClients, Scale(options, options.SteadySeconds * 10.0), ct, options.BinaryTuples);
            }
            catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
            {
                Progress($"steady state failed: {e}");
                steady = new SteadyStateResult { Seconds = options.SteadySeconds, Clients = options.SteadyClients, Error = $"{e.GetType().Name}: {e.Message}" };
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
                ChangelogConnectionString = await server.CreateDatabaseAsync("changelog_big_transaction", ct),
                SlotName = BigTransaction.Slot,
                PublicationName = BenchSchema.Publication,
                StopLsn = stop,
                BinaryTuples = options.BinaryTuples,
            };
            bigTransaction = await ContenderProcess.RunAsync(spec, Scale(options, options.BigTransactionRows / SlowestDrainChangesPerSecond), ct) with
            {
                Name = ContenderNames.OursBigTransaction,
            };
            await BacklogGenerator.DropSlotsAsync(source, [BigTransaction.Slot], ct);
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
        };
        report = report with { Goals = GoalTable.Evaluate(report) };
        var markdown = MarkdownReport.Render(report);
        Directory.CreateDirectory(options.OutputDirectory);
        await File.WriteAllTextAsync(Path.Combine(options.OutputDirectory, JsonFile), JsonSerializer.Serialize(report, HarnessJson.Indented), ct);
        await File.WriteAllTextAsync(Path.Combine(options.OutputDirectory, MarkdownFile), markdown, ct);
        Console.Write(markdown);
        Progress($"wrote {Path.Combine(options.OutputDirectory, JsonFile)} and {MarkdownFile}");
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
        };

        async Task<ContenderResult> DrainAsync(string name, string? changelog, long maxChanges, TimeSpan timeout)
        {
            Progress($"draining with {name}");
            var result = await ContenderProcess.RunAsync(Spec(name, changelog, maxChanges), timeout, ct);
            if (result.Succeeded && result.ReachedEnd)
            {
                result = result with { PgoutputBytes = backlog.PgoutputBytes };
                if (result.Changes != backlog.Changes)
                    Progress($"WARNING: {name} drained {result.Changes:N0} changes, the backlog has {backlog.Changes:N0}");
            }
            return result;
        }
    }

    internal static TimeSpan Scale(HarnessOptions options, double seconds)
        => TimeSpan.FromSeconds(Math.Max(s_minimumTimeout.TotalSeconds, seconds) * options.TimeoutScale);

    internal static LocalPostgresOptions ServerOptions()
    {
        var options = new LocalPostgresOptions();
        // Room for a large backlog without checkpoints in the middle of a drain.
        options.Settings["max_wal_size"] = "8GB";
        options.Settings["checkpoint_timeout"] = "30min";
        return options;
    }

    private static async Task<MachineFacts> MachineAsync(string connectionString, HarnessOptions options, CancellationToken ct)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(ct);
        await using var version = new NpgsqlCommand("SHOW server_version", connection);
        var command = string.Create(CultureInfo.InvariantCulture,
            $"dotnet run -c Release --project bench/Synchro.Pipeline.LoadHarness -- --changes {options.Changes} --go-changes {options.GoChanges} --steady-seconds {options.SteadySeconds} --steady-clients {options.SteadyClients} --big-transaction {options.BigTransactionRows} --out {options.OutputDirectory}{(options.BinaryTuples ? " --binary" : "")}");
        return new MachineFacts(Environment.ProcessorCount, (string)(await version.ExecuteScalarAsync(ct))!, RuntimeInformation.OSDescription, RuntimeInformation.FrameworkDescription, command);
    }

    internal static void Progress(string message) => Console.Error.WriteLine($"[{DateTime.Now:HH:mm:ss}] {message}");
}
