using System.CommandLine;
using Synchro.Pipeline.Cli.Configuration;
using Synchro.Pipeline.Cli.Database;
using Synchro.Pipeline.Cli.Output;

namespace Synchro.Pipeline.Cli;

/// <summary>
/// <c>synchro-pipeline check</c>: the start-up checks of <c>run</c> (settings, wal_level, the roles' REPLICATION and grants,
/// free slots and walsenders, publication, tables, columns, replica identities, slot, sidecar tables) without creating or
/// consuming anything; each problem with its fix, in the managed service's own way where there is one (docs/setup.md).
/// </summary>
internal static class CheckCommand
{
    private const string Name = "check";

    public static Command Create()
    {
        var command = new Command(Name, "Check the settings and the database as run does at start, without creating or consuming anything.");
        var settings = new SettingsFlags(command, withPublication: true);
        command.SetAction((parse, ct) => CheckAsync(parse, settings, ct));
        return command;
    }

    private static async Task<int> CheckAsync(ParseResult parse, SettingsFlags flags, CancellationToken ct)
    {
        try
        {
            var settings = flags.Load(parse);
            settings.ValidateAll();
            var options = settings.Options;
            var target = DatabaseTarget.Describe(options.ConnectionString);
            var subject = $"slot {options.SlotName}, publication {options.PublicationName}, {options.Tables.Count} table(s) on {target}";
            IReadOnlyList<string> warnings;
            try
            {
                warnings = await WalPipeline.CheckAsync(options, ct).ConfigureAwait(false);
            }
            catch (WalPipelineConfigurationException e)
            {
                var output = Terminal.Out;
                output.WriteLine($"{output.Paint("NOT READY", Tone.Bad)}: {subject}: {e.Errors.Count} problem(s)");
                Numbered(e.Errors, Tone.Bad);
                return ExitCodes.Configuration;
            }

            var result = Terminal.Out;
            var summary = warnings.Count == 0 ? "" : $"; {warnings.Count} warning(s)";
            result.WriteLine($"{result.Paint("OK", Tone.Good)}: {subject}{summary}");
            Numbered(warnings, Tone.Warning);
            return ExitCodes.Ok;
        }
        catch (Exception e)
        {
            return Failures.Report(Name, e, ct);
        }
    }

    private static void Numbered(IReadOnlyList<string> items, Tone tone)
    {
        var output = Terminal.Out;
        for (var i = 0; i < items.Count; i++)
        {
            var number = $"{i + 1}.";
            output.WriteWrapped($"  {output.Paint(number, tone)} ", items[i], indent: number.Length + 3);
        }
    }
}
