using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Logging.Console;

namespace Synchro.Pipeline.Cli.Demo;

/// <summary>
/// One line per log entry on standard error (<c>warn: category: message</c>). When standard error is a
/// terminal, each entry first erases the current line, so it never lands inside the progress line on
/// standard output; the progress line is redrawn below it on its next update.
/// </summary>
internal sealed class DemoLogFormatter : ConsoleFormatter
{
    public const string FormatterName = "synchro-demo";

    private const string EraseLine = "\r\u001b[K";

    private static readonly bool s_eraseFirst = !Console.IsErrorRedirected;

    public DemoLogFormatter()
        : base(FormatterName)
    {
    }

    public override void Write<TState>(in LogEntry<TState> logEntry, IExternalScopeProvider? scopeProvider, TextWriter textWriter)
    {
        var message = logEntry.Formatter(logEntry.State, logEntry.Exception);
        if (string.IsNullOrEmpty(message) && logEntry.Exception is null)
            return;

        if (s_eraseFirst)
            textWriter.Write(EraseLine);
        textWriter.Write(Label(logEntry.LogLevel));
        textWriter.Write(": ");
        textWriter.Write(logEntry.Category);
        textWriter.Write(": ");
        textWriter.WriteLine(message);

        // Errors carry their stack; a warning's message already says what happened.
        if (logEntry.Exception is { } exception && logEntry.LogLevel >= LogLevel.Error)
            textWriter.WriteLine(exception.ToString());
    }

    private static string Label(LogLevel level) => level switch
    {
        LogLevel.Trace => "trce",
        LogLevel.Debug => "dbug",
        LogLevel.Information => "info",
        LogLevel.Warning => "warn",
        LogLevel.Error => "fail",
        LogLevel.Critical => "crit",
        _ => level.ToString(),
    };
}
