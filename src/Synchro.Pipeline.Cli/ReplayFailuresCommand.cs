using System.CommandLine;
using System.Globalization;
using Synchro.Pipeline.Cli.Configuration;
using Synchro.Pipeline.Cli.Database;
using Synchro.Pipeline.Cli.Output;
using Synchro.Pipeline.Maintenance;

namespace Synchro.Pipeline.Cli;

/// <summary>
/// <c>synchro-pipeline replay-failures</c>: re-evaluates the changes in <c>sync_rule_failures</c> with the configured rules
/// (after one was fixed), writes their changelog rows and edges, and removes the failures it replayed; prints a summary
/// and the failures that failed again. Safe while <c>run</c> runs (<see cref="RuleFailureReplayer"/>).
/// </summary>
internal static class ReplayFailuresCommand
{
    private const string Name = "replay-failures";

    private static readonly Option<int> s_chunkSize = new("--chunk-size")
    {
        Description = "Failures replayed per transaction (bounds memory and the time the edges are locked)",
        HelpName = "count",
        DefaultValueFactory = _ => 500,
    };

    public static Command Create()
    {
        var command = new Command(Name, "Re-evaluate the changes recorded in sync_rule_failures with the configured bucket rules and write their changelog rows.");
        var settings = new SettingsFlags(command, withPublication: false);
        command.Options.Add(s_chunkSize);
        command.SetAction((parse, ct) => ReplayAsync(parse, settings, ct));
        return command;
    }

    private static async Task<int> ReplayAsync(ParseResult parse, SettingsFlags flags, CancellationToken ct)
    {
        try
        {
            var settings = flags.Load(parse);
            RuleFailureReplayer replayer;
            try
            {
                replayer = new RuleFailureReplayer(settings.Options) { ChunkSize = parse.GetValue(s_chunkSize) };
                if (replayer.ChunkSize < 1)
                    throw new ArgumentException("--chunk-size must be at least 1");
            }
            catch (ArgumentException e)
            {
                throw new SettingsException($"Invalid settings (read from {settings.Sources}): {e.Message}", e);
            }
            var result = await replayer.ReplayAsync(ct).ConfigureAwait(false);
            Report(DatabaseTarget.Describe(settings.Options.ChangelogConnectionString ?? settings.Options.ConnectionString), result);
            return result.StillFailing == 0 ? ExitCodes.Ok : ExitCodes.RuleFailuresRemain;
        }
        catch (Exception e)
        {
            return Failures.Report(Name, e, ct);
        }
    }

    private static void Report(string target, RuleFailureReplayResult result)
    {
        var output = Terminal.Out;
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"synchro-pipeline replay-failures on {target}: {result.Replayed} replayed ({result.ChangelogRows} changelog rows), "
            + $"{result.Superseded} superseded by later changes, {result.StillFailing} still failing"));
        foreach (var failure in result.Failing)
            output.WriteWrapped($"  {output.Paint("failing", Tone.Bad)}  ", string.Create(CultureInfo.InvariantCulture, $"#{failure.Id} {failure.TableName} {failure.RecordId}: {failure.ErrorText}"), indent: 11);
        if (result.StillFailing > result.Failing.Count)
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  ... and {result.StillFailing - result.Failing.Count} more (SELECT * FROM sync_rule_failures)"));
    }
}
