namespace Synchro.Pipeline.Cli.Configuration;

/// <summary>A setting is missing or invalid, or the configuration file cannot be read; exit code <see cref="ExitCodes.Configuration"/>.</summary>
internal sealed class SettingsException : Exception
{
    public SettingsException(string message)
        : base(message)
    {
    }

    public SettingsException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    public SettingsException()
    {
    }
}
