using System.CommandLine;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;
using Synchro.Pipeline.Cli.Output;

namespace Synchro.Pipeline.Cli.Logging;

/// <summary>The <c>--log-level</c> and <c>--log-format</c> flags and the console logging they set up: everything to standard error.</summary>
internal sealed class CliLogging
{
    // Npgsql logs every command it executes at Information; below Debug only its warnings and errors are the operator's business.
    private const string NpgsqlCategory = "Npgsql";

    // UTC and sortable, the same in both formats.
    private const string TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ ";

    private readonly Option<LogLevel> _level = new("--log-level")
    {
        Description = "Least severe events logged",
        DefaultValueFactory = _ => LogLevel.Information,
    };

    private readonly Option<LogFormat> _format = new("--log-format")
    {
        Description = "simple: one line per event; json: one JSON object per line",
        DefaultValueFactory = _ => LogFormat.Simple,
    };

    public CliLogging(Command command)
    {
        command.Options.Add(_level);
        command.Options.Add(_format);
    }

    /// <summary>A logger factory for the flags' level and format; dispose it to flush what is queued.</summary>
    /// <param name="parse">The command line.</param>
    /// <param name="more">Adds further providers (the OTLP exporter), under the same level and filters.</param>
    public ILoggerFactory CreateFactory(ParseResult parse, Action<ILoggingBuilder>? more = null)
    {
        var level = parse.GetValue(_level);
        var format = parse.GetValue(_format);
        return LoggerFactory.Create(builder =>
        {
            builder.SetMinimumLevel(level);
            if (level > LogLevel.Debug)
                builder.AddFilter(NpgsqlCategory, LogLevel.Warning);
            builder.AddConsole(options => options.LogToStandardErrorThreshold = LogLevel.Trace);
            if (format == LogFormat.Json)
            {
                builder.AddJsonConsole(options =>
                {
                    options.UseUtcTimestamp = true;
                    options.TimestampFormat = TimestampFormat.TrimEnd();
                    options.JsonWriterOptions = new JsonWriterOptions { Indented = false };
                });
            }
            else
            {
                builder.AddSimpleConsole(options =>
                {
                    options.SingleLine = true;
                    options.UseUtcTimestamp = true;
                    options.TimestampFormat = TimestampFormat;
                    options.ColorBehavior = Terminal.Error.UseColor ? LoggerColorBehavior.Enabled : LoggerColorBehavior.Disabled;
                });
            }
            more?.Invoke(builder);
        });
    }
}
