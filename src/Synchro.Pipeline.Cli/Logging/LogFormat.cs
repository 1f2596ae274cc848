namespace Synchro.Pipeline.Cli.Logging;

/// <summary>How <c>run</c> writes its log lines to standard error.</summary>
internal enum LogFormat
{
    /// <summary>One line per event: time, level, category, message.</summary>
    Simple,

    /// <summary>One JSON object per line (the console logger's JSON formatter), for log shippers.</summary>
    Json,
}
