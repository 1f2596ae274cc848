namespace Synchro.Pipeline.LoadHarness;

/// <summary>
/// As the CLI does: the harness owns its processes, runs socket completions on the runtime's socket thread and lets our
/// pipeline coalesce reads there (<see cref="WalPipelineOptions.ReadCoalescing"/>), so it reads the way it runs for users.
/// </summary>
internal static class SocketCompletions
{
    /// <summary>The runtime's switch, read once when the first socket is created; child processes inherit it.</summary>
    public const string InlineVariable = "DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS";

    /// <summary>Whether socket completions run inline in this process: the switch as the runtime reads it.</summary>
    public static bool Inline => Environment.GetEnvironmentVariable(InlineVariable) == "1";

    /// <summary>Turns inline completions on unless the environment already sets the switch. Call before the first socket exists.</summary>
    public static void EnableInline()
    {
        if (Environment.GetEnvironmentVariable(InlineVariable) is null)
            Environment.SetEnvironmentVariable(InlineVariable, "1");
    }
}
