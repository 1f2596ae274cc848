namespace Synchro.Pipeline.Cli.Logging;

/// <summary>The id of every event the CLI logs itself, in one place.</summary>
/// <remarks>
/// Below 1000, so no id is also one of the library's (its <c>Synchro.Pipeline.Diagnostics.EventIds</c>, 1000 and up).
/// </remarks>
internal static class CliEventIds
{
    /// <summary><c>run</c>: where the settings were read from and where the changelog is.</summary>
    public const int RunSettings = 1;
}
