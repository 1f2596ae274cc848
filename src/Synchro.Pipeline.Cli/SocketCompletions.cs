namespace Synchro.Pipeline.Cli;

/// <summary>
/// The CLI owns its process, so it runs socket completions on the runtime's socket thread and lets the pipeline
/// coalesce reads there (<see cref="WalPipelineOptions.ReadCoalescing"/>); the library itself never touches the setting.
/// </summary>
internal static class SocketCompletions
{
    /// <summary>The runtime's switch, read once when the first socket is created.</summary>
    public const string InlineVariable = "DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS";

    /// <summary>Whether socket completions run inline in this process: the switch as the runtime reads it.</summary>
    public static bool Inline => Environment.GetEnvironmentVariable(InlineVariable) == "1";

    /// <summary>
    /// Turns inline completions on unless the environment already sets the switch (an explicit <c>0</c> wins). Call
    /// before the first socket exists.
    /// </summary>
    public static void EnableInline()
    {
        if (Environment.GetEnvironmentVariable(InlineVariable) is null)
            Environment.SetEnvironmentVariable(InlineVariable, "1");
    }
}
