namespace Synchro.Pipeline.Cli.Demo;

/// <summary>The pipeline did not reach the end of the workload in the time allowed.</summary>
internal sealed class CatchUpTimeoutException : Exception
{
    public CatchUpTimeoutException()
    {
    }

    public CatchUpTimeoutException(string message)
        : base(message)
    {
    }

    public CatchUpTimeoutException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
