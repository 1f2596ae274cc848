// Run (needs the PostgreSQL server binaries, as the tests do):
//   dotnet run -c Release --project bench/Synchro.Pipeline.LoadHarness -- catch-up --changes 1000000
//   quick: --changes 60000; also --wal-by-relation (the drain's WAL per relation, pg_waldump), --checkpoint (one just before the drain),
//   --prefill-changelog N (a changelog holding N rows before the backlog), --checkpoint-every S (during the drain), --server-setting name=value, --binary (binary tuple mode), --timeout-scale X, --changelog-in-source, --publication all-tables|tables and --record-index (the writer with the reference's (table_name, record_id) index), --traced (every span recorded), --statements (the drain's statements from pg_stat_statements).
using System.Globalization;
using Npgsql;
using Synchro.Pipeline.Changelog;
using Synchro.Pipeline.LoadHarness.Backlog;
using Synchro.Pipeline.LoadHarness.Contenders;
using Synchro.Pipeline.LoadHarness.Reporting;

namespace Synchro.Pipeline.LoadHarness.CatchUp;

/// <summary>
/// Catch-up of our pipeline alone (formerly the test <c>CatchUpMeasurementTests</c>): on a throwaway server, a pgbench
/// backlog written while no consumer runs, then drained end to end into a changelog database by the pipeline in a
/// process of its own (or into the source database, <see cref="HarnessOptions.ChangelogInSource"/>). Prints one line: the
/// backlog, the drain's rate and CPU, the walsender's CPU, the rows written and the peak memory.
/// </summary>
/// <remarks>
/// The same drain as the harness's <see cref="ContenderNames.OursEndToEnd"/> contender, without the others, the steady
/// state and the reports. Exit code 0 when the drain reached the backlog's end with exactly its changes.
/// </remarks>
internal static class CatchUpRunner
{
    public const string Verb = "catch-up";

    public static async Task<int> RunAsync(HarnessOptions options, CancellationToken ct)
    {
        HarnessRunner.Progress("starting a throwaway PostgreSQL server");
        await using var server = await HarnessRunner.StartServerAsync(options, ct);
        var source = await server.CreateDatabaseAsync(BenchSchema.Database, ct);
        await BenchSchema.CreateAsync(source, options.Publication, ct);
        var slot = ContenderNames.Slot(ContenderNames.OursEndToEnd);
        var changelog = options.ChangelogInSource ? null : await server.CreateDatabaseAsync("changelog_catch_up", ct);

        PrefillInfo? prefill = null;
        if (options.PrefillChangelog > 0)
        {
            HarnessRunner.Progress($"prefilling the changelog with {options.PrefillChangelog:N0} rows");
            prefill = await ChangelogPrefill.FillAsync(source, changelog ?? source, options.PrefillChangelog, ct);
            HarnessRunner.Progress(ChangelogPrefill.Describe(prefill));
        }

        HarnessRunner.Progress($"generating a backlog of {options.Changes:N0} changes with pgbench");
        var backlog = await BacklogGenerator.GenerateAsync(HarnessRunner.ClientDirectory(server), source, [slot], options.Changes, ct);
        if (options.RecordIndex)
        {
            // Migrated first, so the pipeline finds nothing missing and keeps the index the migration would drop.
            await using var connection = new NpgsqlConnection(changelog ?? source);
            await connection.OpenAsync(ct);
            await ChangelogSchema.EnsureAsync(connection, ct);
            await using var index = new NpgsqlCommand("CREATE INDEX idx_sync_changelog_record ON sync_changelog (table_name, record_id)", connection);
            await index.ExecuteNonQueryAsync(ct);
        }

        HarnessRunner.Progress($"draining with {ContenderNames.OursEndToEnd}{(options.RecordIndex ? " (with the (table_name, record_id) index)" : "")}");
        var spec = new ContenderSpec
        {
            Name = ContenderNames.OursEndToEnd,
            SourceConnectionString = source,
            ChangelogConnectionString = changelog,
            SlotName = slot,
            PublicationName = BenchSchema.Publication,
            StopLsn = backlog.LastCommitEndLsn,
            BinaryTuples = options.BinaryTuples,
            FilterOriginsOnServer = options.FilterOriginsOnServer,
            Traced = options.Traced,
        };
        if (options.CheckpointBeforeDrain)
        {
            await using var connection = new NpgsqlConnection(source);
            await connection.OpenAsync(ct);
            await using var checkpoint = new NpgsqlCommand("CHECKPOINT", connection) { CommandTimeout = 0 };
            await checkpoint.ExecuteNonQueryAsync(ct);
        }
        var settings = await SettingsAsync(source, options, ct);
        var probe = await HarnessRunner.ProbeAsync(server, source, options, ct);
        var checkpoints = 0;
        var completedBefore = await CheckpointsCompletedAsync(source, server.ServerVersion, ct);
        var result = await HarnessRunner.WithServerCostAsync(probe, () => HarnessRunner.WithWalsenderAsync(source, slot, async () =>
        {
            await using var loop = options.CheckpointEverySeconds > 0 ? await CheckpointLoop.StartAsync(source, TimeSpan.FromSeconds(options.CheckpointEverySeconds), ct) : null;
            var drained = await ContenderProcess.RunAsync(spec, HarnessRunner.Scale(options, backlog.Changes / HarnessRunner.SlowestDrainChangesPerSecond), ct);
            if (loop is not null)
            {
                await loop.StopAsync();
                checkpoints = loop.Checkpoints;
            }
            return drained;
        }, ct), ct);
        var completed = await CheckpointsCompletedAsync(source, server.ServerVersion, ct) - completedBefore;
        await BacklogGenerator.DropSlotsAsync(source, [slot], ct);
        if (result.StopError is not null)
            HarnessRunner.Progress($"WARNING {result.Name} reached the end, then failed while stopping: {result.StopError}");
        if (!result.Succeeded)
        {
            HarnessRunner.Progress($"FAILED {result.Name}: {result.Error}");
            return 1;
        }

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"catch-up{(options.BinaryTuples ? " (binary tuples)" : "")}{(options.CheckpointBeforeDrain ? " (checkpoint before the drain)" : "")}{(options.Traced ? " (traced)" : "")}"
            + $"{(prefill is null ? "" : $" ({ChangelogPrefill.Describe(prefill)})")}{(options.CheckpointEverySeconds > 0 ? $" ({checkpoints} CHECKPOINTs issued during the drain, every {options.CheckpointEverySeconds} s)" : "")}"
            + $" ({completed} checkpoints completed during the drain)"
            + $" [{settings}]: backlog {backlog.Changes:N0} changes in {backlog.Transactions:N0} transactions, "
            + $"{backlog.WalBytes / (1024.0 * 1024):F0} MiB of WAL; drained in {result.WallSeconds:F1} s = {result.ChangesPerSecond:N0} changes/s, "
            + $"{result.CpuSecondsPerMillionChanges:F1} CPU s per 1M changes; walsender {result.WalsenderCpuSeconds:F1} CPU s = {result.WalsenderCpuSecondsPerMillionChanges:F1} per 1M changes"
            + $"{(result.WalsenderProcesses > 1 ? $" ({result.WalsenderProcesses} walsenders)" : "")}; {result.Changes:N0} changes committed in {result.Batches:N0} batches, "
            + $"{result.ChangelogRows:N0} changelog rows, {result.EdgeRows:N0} edges; peak RSS {result.PeakRssBytes / (1024.0 * 1024):F0} MiB"));
        if (result.ServerCost is { } cost)
        {
            Console.Write(ServerCostMarkdown.Render([(result.Name, cost)]));
            Console.Write(StatementsMarkdown.Render([(result.Name, cost)]));
        }
        if (!result.ReachedEnd || result.Changes != backlog.Changes)
        {
            HarnessRunner.Progress($"FAILED: drained {result.Changes:N0} changes, the backlog has {backlog.Changes:N0}");
            return 1;
        }
        return 0;
    }

    /// <summary>Checkpoints the server has completed, timed or requested (by CHECKPOINT or by max_wal_size): 17 moved the counters to pg_stat_checkpointer.</summary>
    private static async Task<long> CheckpointsCompletedAsync(string connectionString, int serverVersion, CancellationToken ct)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(ct);
        await using var count = new NpgsqlCommand(serverVersion >= 17
            ? "SELECT num_timed + num_requested FROM pg_stat_checkpointer"
            : "SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter", connection);
        return (long)(await count.ExecuteScalarAsync(ct))!;
    }

    /// <summary>The server's values of the WAL settings that decide full-page images, and of any other setting the command line set.</summary>
    private static async Task<string> SettingsAsync(string connectionString, HarnessOptions options, CancellationToken ct)
    {
        string[] names = ["full_page_writes", "wal_compression", "checkpoint_timeout", "max_wal_size", .. options.ServerSettings.Select(s => s.Key)];
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(ct);
        var values = new List<string>();
        foreach (var name in names.Distinct(StringComparer.OrdinalIgnoreCase))
        {
            await using var show = new NpgsqlCommand("SELECT current_setting($1)", connection);
            show.Parameters.AddWithValue(name);
            values.Add($"{name}={await show.ExecuteScalarAsync(ct)}");
        }
        return string.Join(", ", values);
    }
}
