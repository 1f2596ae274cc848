// Run (needs the PostgreSQL server binaries, as the tests do):
//   dotnet run -c Release --project bench/Synchro.Pipeline.LoadHarness -- compaction --changes 1000000 --out results/
using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.Json;
using Npgsql;
using Synchro.Pipeline.Changelog;
using Synchro.Pipeline.Compaction;
using Synchro.Pipeline.LoadHarness.Backlog;
using Synchro.Pipeline.LoadHarness.Contenders;
using Synchro.Pipeline.LoadHarness.Reporting;
using Synchro.Pipeline.LocalPostgres;

namespace Synchro.Pipeline.LoadHarness.Compaction;

/// <summary>
/// The changelog's compaction on a throwaway server: a pgbench backlog drained by our pipeline into the source database
/// (the default deployment), its older half written with created_at past the retention, then one compaction pass
/// measured alone (rows removed, WAL, memory of the harness and of the server backend, sizes before, after and after a
/// plain VACUUM); then reader page times on the compacted changelog; then a second backlog drained from two slots, alone and
/// beside a compaction loop.
/// </summary>
/// <remarks>
/// Memory stays bounded whatever the size: the harness holds no rows, the pipeline runs in a child process, and the counts
/// are SQL aggregates. Writes <c>compaction.json</c> and <c>compaction.md</c> to <see cref="HarnessOptions.OutputDirectory"/>.
/// </remarks>
internal static class CompactionRunner
{
    public const string Verb = "compaction";
    public const string JsonFile = "compaction.json";
    public const string MarkdownFile = "compaction.md";

    // The compactor's connections carry this application_name, so the sampler finds its server backends.
    private const string CompactorApplicationName = "synchro-bench-compactor";
    private const string MainSlot = "bench_compaction_backlog";
    private const string AloneSlot = "bench_writer_alone";
    private const string BesideSlot = "bench_writer_beside_compaction";

    // Well past the default retention (7 days): the older half's delete rows are all expired.
    private static readonly TimeSpan s_backdate = TimeSpan.FromDays(30);
    private const string BackdatedDefault = "ALTER TABLE sync_changelog ALTER COLUMN created_at SET DEFAULT pg_catalog.now() - interval '30 days'";
    private const string CurrentDefault = "ALTER TABLE sync_changelog ALTER COLUMN created_at SET DEFAULT pg_catalog.now()";

    public static async Task<int> RunAsync(HarnessOptions options, CancellationToken ct)
    {
        var startedAt = DateTimeOffset.UtcNow;
        var total = Stopwatch.StartNew();
        var steps = new Dictionary<string, double>();
        var step = Stopwatch.StartNew();
        void Step(string name)
        {
            steps[name] = Math.Round(step.Elapsed.TotalSeconds, 1);
            step.Restart();
        }

        HarnessRunner.Progress("starting a throwaway PostgreSQL server");
        await using var server = await LocalPostgresServer.StartAsync(HarnessRunner.ServerOptions(options), ct);
        var source = await server.CreateDatabaseAsync(BenchSchema.Database, ct);
        await BenchSchema.CreateAsync(source, PublicationScope.Tables, ct);
        await using var connection = new NpgsqlConnection(source);
        await connection.OpenAsync(ct);

        // The changelog's older half is made older than the retention without rewriting a row: the schema exists before the
        // first drain, and created_at's default is set back while the older half is drained. The newer half is generated only
        // after that drain, so no newer row gets the old default; created_at rises with seq, as the compactor relies on.
        await ChangelogSchema.EnsureAsync(connection, ct);
        await ChangelogFacts.ExecuteAsync(connection, BackdatedDefault, ct);
        var olderChanges = options.Changes / 2;
        HarnessRunner.Progress($"generating the older half of the backlog, {olderChanges:N0} changes, with pgbench");
        var older = await BacklogGenerator.GenerateAsync(HarnessRunner.ClientDirectory(server), source, [MainSlot], olderChanges, ct, decode: false);
        HarnessRunner.Progress($"draining it with created_at {s_backdate.TotalDays:F0} days back into the source database");
        var drainOlder = await DrainAsync(options, source, MainSlot, older, ct);
        await ChangelogFacts.ExecuteAsync(connection, CurrentDefault, ct);
        if (!drainOlder.Succeeded)
        {
            HarnessRunner.Progress($"FAILED the drain: {drainOlder.Error}");
            return 1;
        }
        HarnessRunner.Progress($"generating the newer half, {options.Changes - olderChanges:N0} changes");
        var newer = await BacklogGenerator.GenerateAsync(HarnessRunner.ClientDirectory(server), source, [], options.Changes - olderChanges, ct, decode: false);
        HarnessRunner.Progress("draining it with created_at now()");
        var drainNewer = await DrainAsync(options, source, MainSlot, newer, ct);
        if (!drainNewer.Succeeded)
        {
            HarnessRunner.Progress($"FAILED the drain: {drainNewer.Error}");
            return 1;
        }
        var backlog = older with
        {
            Transactions = older.Transactions + newer.Transactions,
            Changes = older.Changes + newer.Changes,
            EndLsn = newer.EndLsn,
            LastCommitEndLsn = newer.LastCommitEndLsn,
            WalBytes = older.WalBytes + newer.WalBytes,
            GenerationSeconds = older.GenerationSeconds + newer.GenerationSeconds,
            PgbenchTps = (older.Transactions + newer.Transactions) / (older.GenerationSeconds + newer.GenerationSeconds),
        };
        var drain = drainNewer with
        {
            Changes = drainOlder.Changes + drainNewer.Changes,
            WallSeconds = drainOlder.WallSeconds + drainNewer.WallSeconds,
            CpuSeconds = drainOlder.CpuSeconds + drainNewer.CpuSeconds,
            AllocatedBytes = drainOlder.AllocatedBytes + drainNewer.AllocatedBytes,
            PeakRssBytes = Math.Max(drainOlder.PeakRssBytes ?? 0, drainNewer.PeakRssBytes ?? 0),
            ChangelogRows = drainOlder.ChangelogRows + drainNewer.ChangelogRows,
            EdgeRows = drainOlder.EdgeRows + drainNewer.EdgeRows,
        };
        Step("backlog and drain");

        var compactionOptions = new ChangelogCompactionOptions();
        var backdated = await ChangelogFacts.OlderThanAsync(connection, compactionOptions.DeleteRetention, ct);
        // What autovacuum does to a table that only had inserts: visibility map, hint bits, statistics.
        await ChangelogFacts.ExecuteAsync(connection, "VACUUM (ANALYZE) sync_changelog", ct);
        Step("vacuum analyze");
        HarnessRunner.Progress($"{drain.ChangelogRows:N0} changelog rows, {backdated.Rows:N0} of them (seq <= {backdated.UpToSeq:N0}) older than the retention");

        var expected = await ChangelogFacts.ExpectedRemovalsAsync(connection, compactionOptions.DeleteRetention, ct);
        var before = await ChangelogFacts.SizesAsync(connection, ct);
        Step("count");
        HarnessRunner.Progress($"expected: {expected.Superseded:N0} superseded rows, {expected.ExpiredDeletes:N0} expired delete rows of {before.Rows:N0}; compacting");

        await using var compactorSource = NpgsqlDataSource.Create(new NpgsqlConnectionStringBuilder(source) { ApplicationName = CompactorApplicationName }.ConnectionString);
        var compactor = new ChangelogCompactor(compactorSource, compactionOptions);
        // After a checkpoint, as on a production server: the first change of each page writes a full-page image.
        await ChangelogFacts.ExecuteAsync(connection, "CHECKPOINT", ct);
        var walBefore = await ChangelogFacts.WalInsertLsnAsync(connection, ct);
        ChangelogCompactionResult result;
        PhaseUsage usage;
        await using (var sampler = await PeakSampler.StartAsync(source, CompactorApplicationName, ct))
        {
            result = await compactor.CompactAsync(ct);
            usage = await sampler.StopAsync(ct);
        }
        var walAfter = await ChangelogFacts.WalInsertLsnAsync(connection, ct);
        var afterCompaction = await ChangelogFacts.SizesAsync(connection, ct);
        var pass = new CompactionPass
        {
            RowsRemoved = before.Rows - afterCompaction.Rows,
            Seconds = usage.Seconds,
            WalBytes = (long)((ulong)walAfter - (ulong)walBefore),
            Usage = usage,
            Horizons = await ChangelogFacts.HorizonsAsync(connection, ct),
            LibraryResult = JsonSerializer.SerializeToElement(result, HarnessJson.Options),
        };
        Step("compaction");
        HarnessRunner.Progress($"compaction removed {pass.RowsRemoved:N0} rows in {pass.Seconds:F1} s ({pass.RowsRemovedPerSecond:N0} rows/s), {pass.WalBytes / 1e6:N0} MB of WAL; vacuuming");

        var vacuum = Stopwatch.StartNew();
        await ChangelogFacts.ExecuteAsync(connection, "VACUUM sync_changelog", ct);
        var vacuumSeconds = vacuum.Elapsed.TotalSeconds;
        var afterVacuum = await ChangelogFacts.SizesAsync(connection, ct);
        Step("vacuum");

        // On the compacted changelog, before the writer phase adds to it.
        var (reader, readerNote) = await ReaderPagesAsync(options, source, ct);
        Step("reader");

        WriterComparison? writer = null;
        ChangelogSizes? afterWriter = null;
        var writerChanges = options.WriterChanges ?? DefaultWriterChanges(options.Changes);
        HarnessRunner.Progress($"writer: a backlog of {writerChanges:N0} changes behind two slots");
        var writerBacklog = await BacklogGenerator.GenerateAsync(HarnessRunner.ClientDirectory(server), source, [AloneSlot, BesideSlot], writerChanges, ct, decode: false);
        Step("writer backlog");
        HarnessRunner.Progress("writer: draining it alone");
        var aloneClock = Stopwatch.StartNew();
        var alone = await DrainAsync(options, source, AloneSlot, writerBacklog, ct);
        var aloneProcessSeconds = aloneClock.Elapsed.TotalSeconds;
        Step("writer alone");
        if (alone.Succeeded)
        {
            HarnessRunner.Progress($"writer alone: {alone.ChangesPerSecond:N0} changes/s; draining it again beside a compaction loop");
            writer = await BesideCompactionAsync(options, source, connection, compactor, writerBacklog, alone, ct) with { AloneProcessSeconds = aloneProcessSeconds };
            afterWriter = await ChangelogFacts.SizesAsync(connection, ct);
            HarnessRunner.Progress($"writer beside compaction: {writer.WithCompaction.ChangesPerSecond:N0} changes/s ({writer.Ratio * 100:F0} % of alone), {writer.CompactionPasses} passes");
        }
        else
        {
            HarnessRunner.Progress($"FAILED the writer alone: {alone.Error}");
        }
        await BacklogGenerator.DropSlotsAsync(source, [MainSlot, AloneSlot, BesideSlot], ct);
        Step("writer beside compaction");

        var report = new CompactionReport
        {
            StartedAt = startedAt,
            Machine = await MachineAsync(connection, options, ct),
            Backlog = backlog,
            Drain = drain,
            Retention = compactionOptions.DeleteRetention,
            BackdatedBy = s_backdate,
            BackdatedRows = backdated.Rows,
            BackdatedUpToSeq = backdated.UpToSeq,
            Expected = expected,
            Before = before,
            Compaction = pass,
            AfterCompaction = afterCompaction,
            AfterVacuum = afterVacuum,
            VacuumSeconds = vacuumSeconds,
            Writer = writer,
            AfterWriter = afterWriter,
            Reader = reader,
            ReaderNote = readerNote,
            StepSeconds = steps,
            TotalSeconds = total.Elapsed.TotalSeconds,
        };
        var markdown = CompactionMarkdown.Render(report);
        Directory.CreateDirectory(options.OutputDirectory);
        await File.WriteAllTextAsync(Path.Combine(options.OutputDirectory, JsonFile), JsonSerializer.Serialize(report, HarnessJson.Indented), ct);
        await File.WriteAllTextAsync(Path.Combine(options.OutputDirectory, MarkdownFile), markdown, ct);
        Console.Write(markdown);
        HarnessRunner.Progress($"wrote {Path.Combine(options.OutputDirectory, JsonFile)} and {MarkdownFile}");
        var exact = pass.RowsRemoved == expected.Total;
        if (!exact)
            HarnessRunner.Progress($"WARNING compaction removed {pass.RowsRemoved:N0} rows, the window count expected {expected.Total:N0}");
        return writer is not null && exact ? 0 : 1;
    }

    /// <summary>Drains the backlog again from its second slot while the compactor runs pass after pass on the same changelog.</summary>
    private static async Task<WriterComparison> BesideCompactionAsync(HarnessOptions options, string source, NpgsqlConnection connection,
        ChangelogCompactor compactor, BacklogInfo backlog, ContenderResult alone, CancellationToken ct)
    {
        // Rows removed, the pass cut off by the drain's end included: rows before + rows written (seq advanced; a rolled
        // back batch would leave a gap) - rows after.
        const string Rows = "SELECT count(*) FROM sync_changelog";
        const string LastSeq = "SELECT coalesce(max(seq), 0) FROM sync_changelog";
        var rowsBefore = await ChangelogFacts.ScalarAsync<long>(connection, Rows, ct);
        var seqBefore = await ChangelogFacts.ScalarAsync<long>(connection, LastSeq, ct);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var passes = 0;
        var processSeconds = 0.0;
        var stopSeconds = 0.0;
        PhaseUsage usage;
        ContenderResult with;
        await using (var sampler = await PeakSampler.StartAsync(source, CompactorApplicationName, ct))
        {
            var loop = Task.Run(async () =>
            {
                while (!stop.IsCancellationRequested)
                {
                    try
                    {
                        await compactor.CompactAsync(stop.Token);
                        passes++;
                    }
                    catch (Exception e) when (stop.IsCancellationRequested && e is OperationCanceledException or NpgsqlException)
                    {
                        // The drain ended: the pass in flight is abandoned.
                    }
                }
            }, CancellationToken.None);
            var clock = Stopwatch.StartNew();
            with = await DrainAsync(options, source, BesideSlot, backlog, ct);
            processSeconds = clock.Elapsed.TotalSeconds;
            // Cancelling waits for Npgsql's cancel request of the statement in flight (the token's callback is synchronous).
            clock.Restart();
            await stop.CancelAsync();
            await loop;
            stopSeconds = clock.Elapsed.TotalSeconds;
            usage = await sampler.StopAsync(ct);
        }
        return new WriterComparison
        {
            Backlog = backlog,
            Alone = alone,
            WithCompaction = with,
            WithCompactionProcessSeconds = processSeconds,
            LoopStopSeconds = stopSeconds,
            CompactionPasses = passes,
            CompactionRowsRemoved = rowsBefore + (await ChangelogFacts.ScalarAsync<long>(connection, LastSeq, ct) - seqBefore)
                - await ChangelogFacts.ScalarAsync<long>(connection, Rows, ct),
            CompactionUsage = usage,
        };
    }

    /// <summary>A fifth of the changelog's backlog, at most 1,000,000: long enough for a rate, short enough for a 10M run.</summary>
    internal static long DefaultWriterChanges(long changes) => Math.Clamp(changes / 5, 1, 1_000_000);

    private static async Task<ContenderResult> DrainAsync(HarnessOptions options, string source, string slot, BacklogInfo backlog, CancellationToken ct)
    {
        var spec = new ContenderSpec
        {
            Name = ContenderNames.OursEndToEnd,
            SourceConnectionString = source,
            ChangelogConnectionString = null,
            SlotName = slot,
            PublicationName = BenchSchema.Publication,
            StopLsn = backlog.LastCommitEndLsn,
            BinaryTuples = options.BinaryTuples,
        };
        // The backlog was not decoded: its change count is pgbench's upper bound (an update can miss a row that another
        // client's open transaction inserted), and the drain's own count is the one reported.
        return await ContenderProcess.RunAsync(spec, HarnessRunner.Scale(options, backlog.Changes / HarnessRunner.SlowestDrainChangesPerSecond), ct);
    }

    private static async Task<(IReadOnlyList<ReaderPageTimes>?, string?)> ReaderPagesAsync(HarnessOptions options, string source, CancellationToken ct)
    {
        if (options.ReaderPages == 0)
            return (null, "not measured (--reader-pages 0)");
        HarnessRunner.Progress($"reader: {options.ReaderPages} pages of up to {ReaderPageTimer.Limit:N0} rows for 1, 10 and 300 buckets");
        try
        {
            return (await ReaderPageTimer.RunAsync(source, options.ReaderPages, ct), null);
        }
        catch (Exception e) when (e is InvalidOperationException or NpgsqlException)
        {
            HarnessRunner.Progress($"reader failed: {e}");
            return (null, $"failed: {e.GetType().Name}: {e.Message}");
        }
    }

    private static async Task<MachineFacts> MachineAsync(NpgsqlConnection connection, HarnessOptions options, CancellationToken ct)
    {
        var version = await ChangelogFacts.ScalarAsync<string>(connection, "SHOW server_version", ct);
        var command = FormattableString.Invariant($"dotnet run -c Release --project bench/Synchro.Pipeline.LoadHarness -- {Verb} --changes {options.Changes}")
            + (options.WriterChanges is { } m ? FormattableString.Invariant($" --writer-changes {m}") : "")
            + FormattableString.Invariant($" --reader-pages {options.ReaderPages} --out {options.OutputDirectory}")
            + (options.BinaryTuples ? " --binary" : "");
        return new MachineFacts(Environment.ProcessorCount, version, RuntimeInformation.OSDescription, RuntimeInformation.FrameworkDescription, command);
    }
}
