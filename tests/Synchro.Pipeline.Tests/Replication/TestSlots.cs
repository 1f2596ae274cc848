namespace Synchro.Pipeline.Tests.Replication;

/// <summary>Slot names are server-wide, so every test takes its own.</summary>
internal static class TestSlots
{
    private static int s_next;

    public static string NewName(string prefix) => $"{prefix}_{Interlocked.Increment(ref s_next)}";
}
