namespace Synchro.Pipeline.LocalPostgres;

/// <summary>
/// Raised when a <see cref="LocalPostgresServer"/> cannot be located, initialized, started or stopped.
/// </summary>
public sealed class LocalPostgresException : Exception
{
    /// <summary>Creates an exception with a default message.</summary>
    public LocalPostgresException()
    {
    }

    /// <summary>Creates an exception with the given message.</summary>
    /// <param name="message">What went wrong and, where possible, how to fix it.</param>
    public LocalPostgresException(string message)
        : base(message)
    {
    }

    /// <summary>Creates an exception with the given message and cause.</summary>
    /// <param name="message">What went wrong and, where possible, how to fix it.</param>
    /// <param name="innerException">The underlying failure.</param>
    public LocalPostgresException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
