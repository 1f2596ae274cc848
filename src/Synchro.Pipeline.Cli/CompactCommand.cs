using System.CommandLine;
using System.Globalization;
using Npgsql;
using Synchro.Pipeline.Changelog;
using Synchro.Pipeline.Cli.Configuration;
using Synchro.Pipeline.Cli.Database;
using Synchro.Pipeline.Cli.Logging;
using Synchro.Pipeline.Cli.Output;
using Synchro.Pipeline.Compaction;

namespace Synchro.Pipeline.Cli;

/// <summary>
/// <c>synchro-pipeline compact</c>: one compaction of the changelog (<see cref="ChangelogCompactor"/>): superseded rows and
/// latest deletes older than the retention removed, horizons raised; prints what it did. Safe while <c>run</c> runs.
/// </summary>
internal static class CompactCommand
{
    private const string Name = "compact";

    private static readonly Option<string> s_retention = new("--delete-retention")
    {
        Description = "Keep latest delete rows this long (Synchro:DeleteRetention; 7d by default): 36h, 7d, 00:30:00. Clients behind it resync the bucket",
        HelpName = "duration",
    };

    private static readonly Option<int> s_chunkRows = new("--chunk-rows")
    {
        Description = "Rows of a bucket read and removed per transaction",
        HelpName = "count",
        DefaultValueFactory = _ => 5_000,
    };

    private static readonly Option<int> s_maxTracked = new("--max-tracked-records")
    {
        Description = "Most records of one bucket tracked in memory; a bucket with more is compacted only for its newest records",
        HelpName = "count",
        DefaultValueFactory = _ => 1_000_000,
    };

    private static readonly Option<bool> s_full = new("--full")
    {
        Description = "Visit every bucket, not only those with rows after the last complete run (after buckets were left partly compacted)",
    };

    public static Command Create()
    {
        var command = new Command(Name, "Compact the changelog: remove rows superseded by a later row of the same record in the same bucket, and latest delete rows older than the retention (raising the bucket's horizon, so clients behind it resync). Safe while run runs.");
        var settings = new SettingsFlags(command, withPublication: false);
        var logging = new CliLogging(command);
        settings.AddSetting(s_retention, nameof(WalPipelineOptions.DeleteRetention));
        command.Options.Add(s_chunkRows);
        command.Options.Add(s_maxTracked);
        command.Options.Add(s_full);
        command.SetAction((parse, ct) => CompactAsync(parse, settings, logging, ct));
        return command;
    }

    private static async Task<int> CompactAsync(ParseResult parse, SettingsFlags flags, CliLogging logging, CancellationToken ct)
    {
        try
        {
            var settings = flags.Load(parse);
            var connectionString = settings.ChangelogConnectionString();
            var options = new ChangelogCompactionOptions
            {
                DeleteRetention = settings.Options.DeleteRetention,
                ChunkRows = parse.GetValue(s_chunkRows),
                MaxTrackedRecords = parse.GetValue(s_maxTracked),
                Full = parse.GetValue(s_full),
            };
            try
            {
                options.Validate();
            }
            catch (ArgumentException e)
            {
                throw new SettingsException($"Invalid settings (read from {settings.Sources}): {e.Message}", e);
            }
            ChangelogCompactionResult result;
            string schema;
            // Disposed before the report is printed, so queued log lines come first.
            using (var loggers = logging.CreateFactory(parse))
            {
                var dataSource = NpgsqlDataSource.Create(ChangelogSchema.PinSearchPath(connectionString));
                await using (dataSource.ConfigureAwait(false))
                {
                    var compactor = new ChangelogCompactor(dataSource, options, loggers);
                    schema = compactor.Schema;
                    result = await compactor.CompactAsync(ct).ConfigureAwait(false);
                }
            }
            Report(DatabaseTarget.Describe(connectionString), schema, options, result);
            return ExitCodes.Ok;
        }
        catch (Exception e)
        {
            return Failures.Report(Name, e, ct);
        }
    }

    private static void Report(string target, string schema, ChangelogCompactionOptions options, ChangelogCompactionResult result)
    {
        var output = Terminal.Out;
        if (result.AnotherRunning)
        {
            output.WriteLine($"synchro-pipeline compact on {target}: another compaction of the changelog in schema {schema} is running; nothing done.");
            return;
        }
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"synchro-pipeline compact on {target}, schema {schema}: {result.BucketsVisited} bucket(s) visited, {result.RowsRemoved} row(s) removed "
            + $"({result.SupersededRowsRemoved} superseded, {result.DeletesRemoved} delete(s) older than {options.DeleteRetention}), "
            + $"{result.HorizonsRaised} horizon(s) raised, in {result.Duration.TotalSeconds:F1} s"));
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"  compacted through seq {result.CompactedThroughSeq}, deletes through seq {result.PurgedThroughSeq}"));
        if (result.BucketsLeftPartial > 0)
        {
            var partial = string.Create(CultureInfo.InvariantCulture,
                $"{result.BucketsLeftPartial} bucket(s) had more than {options.MaxTrackedRecords} records and were compacted only for their newest ones; ");
            output.WriteWrapped($"  {output.Paint("partial", Tone.Warning)}  ", partial + "raise --max-tracked-records and run compact --full", indent: 11);
        }
    }
}
