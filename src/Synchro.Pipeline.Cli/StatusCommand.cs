using System.CommandLine;
using System.Text.Json;
using Synchro.Pipeline.Cli.Configuration;
using Synchro.Pipeline.Cli.Output;
using Synchro.Pipeline.Cli.Status;

namespace Synchro.Pipeline.Cli;

/// <summary>
/// <c>synchro-pipeline status</c>: the slot (exists, active, plugin, wal_status, positions, lag, retained WAL) and the
/// changelog (persisted position, last row, rule failures). Exit 0 when the slot exists and is usable,
/// <see cref="ExitCodes.SlotMissing"/> when it does not exist, <see cref="ExitCodes.Replication"/> when it was
/// invalidated, <see cref="ExitCodes.Configuration"/> when the pipeline refuses the persisted position (invariant 8);
/// the report is printed in every case.
/// </summary>
internal static class StatusCommand
{
    private const string Name = "status";

    public static Command Create()
    {
        var command = new Command(Name, "Show the replication slot, its lag and retained WAL, and the changelog's position and rule failures.");
        var settings = new SettingsFlags(command, withPublication: false);
        var json = new Option<bool>("--json") { Description = "Print one JSON object (snake_case keys) instead of a table" };
        command.Options.Add(json);
        command.SetAction((parse, ct) => StatusAsync(parse, settings, parse.GetValue(json), ct));
        return command;
    }

    private static async Task<int> StatusAsync(ParseResult parse, SettingsFlags flags, bool json, CancellationToken ct)
    {
        StatusReport report;
        try
        {
            var settings = flags.Load(parse);
            settings.ValidateSlotAndConnection();
            var options = settings.Options;
            report = await StatusReader.ReadAsync(options.ConnectionString, options.ChangelogConnectionString ?? options.ConnectionString, options.SlotName, ct).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            return Failures.Report(Name, e, ct);
        }

        if (json)
            Terminal.Out.WriteLine(JsonSerializer.Serialize(report, StatusJsonContext.Default.StatusReport));
        else
            StatusView.Write(report, Terminal.Out);

        return report.Changelog.PositionProblems.Count > 0 ? ExitCodes.Configuration
            : !report.Slot.Exists ? ExitCodes.SlotMissing
            : report.Slot.WalStatus == "lost" || report.Slot.InvalidationReason is not null ? ExitCodes.Replication
            : ExitCodes.Ok;
    }
}
