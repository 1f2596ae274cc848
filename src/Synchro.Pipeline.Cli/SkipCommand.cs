using System.CommandLine;
using Synchro.Pipeline.Cli.Configuration;
using Synchro.Pipeline.Cli.Database;
using Synchro.Pipeline.Cli.Output;
using Synchro.Pipeline.Protocol;

namespace Synchro.Pipeline.Cli;

/// <summary>
/// <c>synchro-pipeline skip --lsn X</c>: asks the pipeline to skip the source transaction committed at X, the one the
/// error that stopped it named (<see cref="WalPipeline.SkipTransactionAsync"/>).
/// </summary>
internal static class SkipCommand
{
    private const string Name = "skip";

    private static readonly Option<string> s_lsn = new("--lsn")
    {
        Description = "The commit LSN of the transaction to skip, as the error that stopped the pipeline gave it (for example 0/16B3748)",
        HelpName = "lsn",
        Required = true,
    };

    public static Command Create()
    {
        var command = new Command(Name, "Skip one source transaction the changelog cannot take: its changes go to sync_rule_failures (for replay-failures) instead of the changelog.");
        var settings = new SettingsFlags(command, withPublication: false);
        command.Options.Add(s_lsn);
        command.SetAction((parse, ct) => SkipAsync(parse, settings, ct));
        return command;
    }

    private static async Task<int> SkipAsync(ParseResult parse, SettingsFlags flags, CancellationToken ct)
    {
        try
        {
            var settings = flags.Load(parse);
            var text = parse.GetValue(s_lsn);
            if (!Lsn.TryParse(text, out var lsn) || !lsn.IsValid)
                throw new SettingsException($"--lsn '{text}' is not a position: give it as the error did, two hexadecimal numbers with a slash (0/16B3748).");
            try
            {
                await WalPipeline.SkipTransactionAsync(settings.Options, lsn, ct).ConfigureAwait(false);
            }
            catch (ArgumentException e)
            {
                throw new SettingsException(e.Message, e);
            }
            var target = DatabaseTarget.Describe(settings.Options.ChangelogConnectionString ?? settings.Options.ConnectionString);
            Terminal.Out.WriteLine($"Slot {settings.Options.SlotName} on {target}: the transaction committed at {lsn} will be skipped when the pipeline reaches it "
                + "(at its next start, or now if it is stopped); its changes go to sync_rule_failures, where replay-failures applies them once the cause is fixed.");
            return ExitCodes.Ok;
        }
        catch (Exception e)
        {
            return Failures.Report(Name, e, ct);
        }
    }
}
