namespace Synchro.Pipeline;

/// <summary>
/// The pipeline stopped on an error it cannot recover from by reconnecting: the message says what
/// happened and what to do. Nothing after the last committed batch was applied; a restart resumes there.
/// </summary>
public sealed class WalPipelineException : Exception
{
    /// <summary>Creates the exception.</summary>
    public WalPipelineException()
    {
    }

    /// <summary>Creates the exception with a message that says what happened and what to do.</summary>
    public WalPipelineException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with its cause.</summary>
    public WalPipelineException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
