using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;
using System.Text.Json;
using Synchro.Pipeline.Cli.Configuration;
using Synchro.Pipeline.Cli.Output;
using Synchro.Pipeline.Cli.Status;

namespace Synchro.Pipeline.Cli;

/// <summary>
/// <c>synchro-pipeline status</c>: a one-line verdict, then the slot (exists, active, plugin, wal_status, positions, lag,
/// retained WAL) and the changelog (persisted position, last row, rule failures). Exit 0 when the slot exists and is
/// usable, <see cref="ExitCodes.SlotMissing"/> when it does not exist, <see cref="ExitCodes.Replication"/> when it was
/// invalidated, <see cref="ExitCodes.Configuration"/> when the pipeline refuses the persisted position (invariant 8);
/// the report is printed in every case. The verdict and the exit code come from <see cref="StatusVerdict"/>.
/// </summary>
/// <remarks>
/// <c>--watch</c> reads it again every interval until Ctrl+C / SIGTERM, and then exits with the code of the last status
/// it showed (130 when it was stopped before the first): what the operator last saw is what a script gets.
/// </remarks>
internal static class StatusCommand
{
    private const string Name = "status";

    // --watch without a value; a refresh opens two connections, so not much faster than the minimum.
    private static readonly TimeSpan s_defaultWatchInterval = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan s_minimumWatchInterval = TimeSpan.FromMilliseconds(100);

    public static Command Create()
    {
        var command = new Command(Name, "Show a one-line verdict, the replication slot, its lag and retained WAL, and the changelog's position and rule failures.");
        var settings = new SettingsFlags(command, withPublication: false);
        var json = new Option<bool>("--json") { Description = "Print one JSON object (snake_case keys) instead of a table" };
        var watch = new Option<string>("--watch")
        {
            Description = "Refresh every N seconds (default 2) until Ctrl+C, in place on a terminal, one line per refresh when redirected "
                + "(one JSON object per line with --json); exits with the last status's code",
            HelpName = "seconds",
            Arity = ArgumentArity.ZeroOrOne,
        };
        watch.Validators.Add(result =>
        {
            if (WatchInterval(result) is null)
                result.AddError($"--watch: '{result.Tokens[0].Value}' is not a number of seconds of at least {s_minimumWatchInterval.TotalSeconds.ToString(CultureInfo.InvariantCulture)} (e.g. --watch 5)");
        });
        command.Options.Add(json);
        command.Options.Add(watch);
        command.SetAction((parse, ct) => StatusAsync(parse, settings, parse.GetValue(json), parse.GetResult(watch) is { } w ? WatchInterval(w) : null, ct));
        return command;
    }

    private static async Task<int> StatusAsync(ParseResult parse, SettingsFlags flags, bool json, TimeSpan? watch, CancellationToken ct)
    {
        Func<CancellationToken, Task<StatusReport>> read;
        try
        {
            var settings = flags.Load(parse);
            settings.ValidateSlotAndConnection();
            var options = settings.Options;
            read = token => StatusReader.ReadAsync(options.ConnectionString, options.ChangelogConnectionString ?? options.ConnectionString, options.SlotName,
                options.SlotSafeWalSizeWarning, token);
        }
        catch (Exception e)
        {
            return Failures.Report(Name, e, ct);
        }
        if (watch is { } interval)
            return await WatchAsync(read, interval, json, ct).ConfigureAwait(false);

        StatusReport report;
        try
        {
            report = await read(ct).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            return Failures.Report(Name, e, ct);
        }
        if (json)
            Terminal.Out.WriteLine(JsonSerializer.Serialize(report, StatusJsonContext.Default.StatusReport));
        else
            StatusView.Write(report, Terminal.Out);
        return report.Verdict.ExitCode;
    }

    /// <summary>Reads and shows the status every <paramref name="interval"/> until <paramref name="ct"/> is cancelled; a failed read is reported and retried.</summary>
    private static async Task<int> WatchAsync(Func<CancellationToken, Task<StatusReport>> read, TimeSpan interval, bool json, CancellationToken ct)
    {
        var output = Terminal.Out;
        var inPlace = !json && output.CanRedraw;
        var lines = new StatusJsonContext(new JsonSerializerOptions(StatusJsonContext.Default.Options) { WriteIndented = false });
        int? last = null;
        using var timer = new PeriodicTimer(interval);
        do
        {
            StatusReport report;
            try
            {
                report = await read(ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                break;
            }
            catch (Exception e)
            {
                if (inPlace)
                    output.ClearScreen();
                last = Failures.Report(Name, e, ct);
                continue;
            }

            var at = DateTimeOffset.UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
            if (json)
            {
                output.WriteLine(JsonSerializer.Serialize(report, lines.StatusReport));
            }
            else if (inPlace)
            {
                output.ClearScreen();
                output.WriteLine(output.Paint($"{at}, every {interval.TotalSeconds.ToString(CultureInfo.InvariantCulture)} s; Ctrl+C stops", Tone.Dim));
                StatusView.Write(report, output);
            }
            else
            {
                output.WriteLine($"{at} {report.Verdict.Line}");
            }
            last = report.Verdict.ExitCode;
        }
        while (await NextAsync(timer, ct).ConfigureAwait(false));
        return last ?? ExitCodes.Interrupted;
    }

    private static async Task<bool> NextAsync(PeriodicTimer timer, CancellationToken ct)
    {
        try
        {
            return await timer.WaitForNextTickAsync(ct).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    /// <summary>The interval <c>--watch</c> asked for: its default without a value, null for a value that is not a number of seconds at least the minimum.</summary>
    private static TimeSpan? WatchInterval(OptionResult result)
    {
        if (result.Tokens.Count == 0)
            return s_defaultWatchInterval;
        var text = result.Tokens[0].Value;
        text = text.EndsWith('s') ? text[..^1] : text;
        return double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds) && double.IsFinite(seconds) && seconds >= s_minimumWatchInterval.TotalSeconds
            && seconds <= TimeSpan.MaxValue.TotalSeconds / 2
            ? TimeSpan.FromSeconds(seconds)
            : null;
    }
}
