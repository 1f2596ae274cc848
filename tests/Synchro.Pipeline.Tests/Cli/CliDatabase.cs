using Synchro.Pipeline.Tests.Infrastructure;
using Synchro.Pipeline.Tests.Pipeline;

namespace Synchro.Pipeline.Tests.Cli;

/// <summary>Waits and look-ups the CLI tests make against the test server.</summary>
internal static class CliDatabase
{
    /// <summary>Waits until a walsender streams from <paramref name="slot"/>; fails at once with the process's output if it exits first.</summary>
    public static async Task WaitForStreamingAsync(string connectionString, string slot, CliProcess process)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (!await Sql.ScalarAsync<bool>(connectionString, PipelineHostProcess.SlotStreamingQuery.Replace("$1", "@slot", StringComparison.Ordinal), ("slot", slot)))
        {
            if (process.HasExited)
                throw new InvalidOperationException($"synchro-pipeline exited before streaming.{Environment.NewLine}stdout: {process.Output}{Environment.NewLine}stderr: {process.Error}");
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"synchro-pipeline did not start streaming from {slot} in 60 s.{Environment.NewLine}stderr: {process.Error}");
            await Task.Delay(100);
        }
    }
}
