namespace Synchro.Pipeline.Cli.Demo;

/// <summary>The demo cannot go on; the message says why and what to do, in one line.</summary>
internal sealed class DemoException : Exception
{
    /// <summary>The process exit code (<see cref="ExitCodes"/>): by default, something the demo needs is missing.</summary>
    public int ExitCode { get; init; } = ExitCodes.Configuration;

    public DemoException()
    {
    }

    public DemoException(string message)
        : base(message)
    {
    }

    public DemoException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
