using System.Diagnostics;
using System.Text.Json;
using Synchro.Pipeline.LoadHarness.Reporting;

namespace Synchro.Pipeline.LoadHarness.Contenders;

/// <summary>The harness side of a contender: re-invokes this executable as <c>contender &lt;spec&gt;</c> and reads its result line.</summary>
internal static class ContenderProcess
{
    // Lines of the child's standard error kept in a failure report.
    private const int ErrorTailLines = 15;

    public static async Task<ContenderResult> RunAsync(ContenderSpec spec, TimeSpan timeout, CancellationToken ct)
    {
        var start = SelfStartInfo();
        start.ArgumentList.Add(ContenderHost.Verb);
        start.ArgumentList.Add(JsonSerializer.Serialize(spec, HarnessJson.Options));
        var exit = await ChildProcess.RunAsync(start, timeout, ct);
        if (exit.TimedOut)
            return Failed(spec.Name, exit, $"timed out after {timeout.TotalSeconds:F0} s (killed)");

        var line = exit.Output.Split('\n').LastOrDefault(l => l.StartsWith(ContenderHost.ResultPrefix, StringComparison.Ordinal));
        if (line is null)
            return Failed(spec.Name, exit, $"exited with code {exit.ExitCode} without a result");
        var result = JsonSerializer.Deserialize<ContenderResult>(line[ContenderHost.ResultPrefix.Length..].TrimEnd(), HarnessJson.Options)!;
        if (!result.Succeeded)
            Console.Error.WriteLine($"{spec.Name} failed:\n{Tail(exit.Error)}");
        return result;
    }

    /// <summary>This program again: the apphost, or <c>dotnet Synchro.Pipeline.LoadHarness.dll</c> when run through the muxer.</summary>
    private static ProcessStartInfo SelfStartInfo()
    {
        var path = Environment.ProcessPath ?? throw new InvalidOperationException("the harness cannot find its own executable");
        var start = new ProcessStartInfo(path);
        if (Path.GetFileNameWithoutExtension(path) == "dotnet")
            start.ArgumentList.Add(typeof(ContenderProcess).Assembly.Location);
        return start;
    }

    private static ContenderResult Failed(string name, ChildExit exit, string reason)
    {
        Console.Error.WriteLine($"{name}: {reason}\n{Tail(exit.Error)}");
        return new ContenderResult { Name = name, Error = reason, WallSeconds = exit.Elapsed.TotalSeconds };
    }

    private static string Tail(string text) => string.Join('\n', text.TrimEnd().Split('\n').TakeLast(ErrorTailLines));
}
