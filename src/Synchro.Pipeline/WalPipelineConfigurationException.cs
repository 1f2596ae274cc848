using System.Text;

namespace Synchro.Pipeline;

/// <summary>
/// The source database or the pipeline's configuration cannot support the pipeline: found by the
/// start-up checks before anything is consumed. The message lists every problem found and, for each,
/// what to change. Also thrown when the persisted position does not belong to the source (another
/// cluster, database or timeline, ahead of the server's WAL, behind the slot), at start or before a
/// reconnect streams; the message then says what was or would be lost and the commands that recover.
/// </summary>
/// <remarks>
/// Nothing has been read from the slot (in this run) or confirmed to the server when this is thrown;
/// fix the listed problems and start again. It is never retried.
/// </remarks>
public sealed class WalPipelineConfigurationException : Exception
{
    /// <summary>Creates the exception for one configuration problem described by <paramref name="message"/>.</summary>
    /// <param name="message">What is wrong and what to change.</param>
    public WalPipelineConfigurationException(string? message)
        : base(message)
    {
        Errors = message is null ? [] : [message];
    }

    /// <summary>Creates the exception for one configuration problem found through <paramref name="innerException"/>.</summary>
    /// <param name="message">What is wrong and what to change.</param>
    /// <param name="innerException">The error that revealed the problem.</param>
    public WalPipelineConfigurationException(string? message, Exception? innerException)
        : base(message, innerException)
    {
        Errors = message is null ? [] : [message];
    }

    internal WalPipelineConfigurationException(IReadOnlyList<string> errors)
        : base(Describe(errors))
    {
        Errors = errors;
    }

    /// <summary>Whether this refuses the persisted position (invariant 8 of docs/architecture.md) rather than the setup; logged with its own event id.</summary>
    internal bool RefusesPosition { get; init; }

    /// <summary>Each problem found, with its fix, one entry per problem.</summary>
    public IReadOnlyList<string> Errors { get; }

    private static string Describe(IReadOnlyList<string> errors)
    {
        if (errors.Count == 1)
            return "The WAL pipeline cannot start: " + errors[0];

        var text = new StringBuilder("The WAL pipeline cannot start; ")
            .Append(errors.Count)
            .Append(" configuration problems:");
        for (var i = 0; i < errors.Count; i++)
            text.Append('\n').Append(i + 1).Append(". ").Append(errors[i]);
        return text.ToString();
    }
}
