using System.CommandLine;
using System.Globalization;
using Microsoft.Extensions.Logging;
using Synchro.Pipeline.Cli.Configuration;
using Synchro.Pipeline.Cli.Database;
using Synchro.Pipeline.Cli.Logging;
using Synchro.Pipeline.Cli.Output;
using Synchro.Pipeline.Cli.Telemetry;

namespace Synchro.Pipeline.Cli;

/// <summary>
/// <c>synchro-pipeline run</c>: consumes the slot until Ctrl+C or SIGTERM, then stops cleanly (the batch in flight is
/// finished, never half-written) and prints one summary line. With <c>--wait-for-lock</c> it first waits, as long as it
/// takes, while another instance consumes the slot.
/// </summary>
internal static partial class RunCommand
{
    private const string Name = "run";

    public static Command Create()
    {
        var command = new Command(Name, "Consume the replication slot into the changelog until Ctrl+C or SIGTERM.");
        var settings = new SettingsFlags(command, withPublication: true);
        settings.AddSwitch(new Option<bool>("--wait-for-lock")
        {
            Description = "Wait as a passive instance while another instance of this slot is active, and take over when it stops or dies (Synchro:WaitForLock), instead of failing after SlotWaitTimeout",
        }, nameof(WalPipelineOptions.WaitForLock));
        var logging = new CliLogging(command);
        var telemetry = new CliTelemetry(command);
        command.SetAction((parse, ct) => RunAsync(parse, settings, logging, telemetry, ct));
        return command;
    }

    private static async Task<int> RunAsync(ParseResult parse, SettingsFlags flags, CliLogging logging, CliTelemetry telemetry, CancellationToken ct)
    {
        Settings settings;
        TelemetryExports exports;
        try
        {
            settings = flags.Load(parse);
            settings.ValidateAll();
            exports = telemetry.Start(parse);
        }
        catch (SettingsException e)
        {
            return Failures.Report(Name, e, ct);
        }

        Exception? failure = null;
        WalPipelineStatus status;
        // Disposed before anything else is printed, so queued log lines come first; the exports after the loggers, so
        // the last spans, metrics and logs are flushed too.
        using (exports)
        using (var loggers = logging.CreateFactory(parse, exports.AddLogging))
        {
            var options = settings.Options;
            options.LoggerFactory = loggers;
            LogSettings(loggers.CreateLogger("Synchro.Pipeline.Cli"), settings.Sources, DatabaseTarget.Describe(options.ChangelogConnectionString ?? options.ConnectionString));
            var pipeline = new WalPipeline(options);
            await using (pipeline.ConfigureAwait(false))
            {
                try
                {
                    await pipeline.RunAsync(ct).ConfigureAwait(false);
                }
                catch (Exception e)
                {
                    failure = e;
                }
                status = pipeline.GetStatus();
            }
        }

        Terminal.Out.WriteLine(Summary(status, failure is null));
        return failure is null ? ExitCodes.Ok : Failures.Report(Name, failure, ct);
    }

    private static string Summary(WalPipelineStatus status, bool clean) => string.Create(
        CultureInfo.InvariantCulture,
        $"synchro-pipeline run: {(clean ? "stopped cleanly" : "stopped on an error")}; {status.ChangesCommitted} changes committed "
        + $"({status.Transactions} transactions in {status.Batches} batches), {status.ChangelogRows} changelog rows, "
        + $"{status.RuleFailures} rule failures, {status.Reconnects} reconnects; position {status.CommittedLsn}");

    [LoggerMessage(EventId = CliEventIds.RunSettings, Level = LogLevel.Information, Message = "synchro-pipeline run: settings from {Sources}; changelog in {Changelog}")]
    private static partial void LogSettings(ILogger logger, string sources, string changelog);
}
