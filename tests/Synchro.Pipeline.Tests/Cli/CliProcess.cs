using System.Diagnostics;

namespace Synchro.Pipeline.Tests.Cli;

/// <summary>Runs the built CLI (synchro-pipeline.dll beside the test assembly) as a process with redirected output.</summary>
internal static class CliProcess
{
    public sealed record Result(int ExitCode, string Output, string Error);

    public static async Task<Result> RunAsync(TimeSpan timeout, IReadOnlyDictionary<string, string>? environment, params string[] arguments)
    {
        var cli = Path.Combine(AppContext.BaseDirectory, "synchro-pipeline.dll");
        Assert.True(File.Exists(cli), $"{cli} was not built next to the tests");
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
        };
        start.ArgumentList.Add(cli);
        foreach (var argument in arguments)
            start.ArgumentList.Add(argument);
        foreach (var (name, value) in environment ?? new Dictionary<string, string>())
            start.Environment[name] = value;

        using var process = Process.Start(start)!;
        process.StandardInput.Close();
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        try
        {
            await process.WaitForExitAsync().WaitAsync(timeout);
        }
        catch (TimeoutException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"synchro-pipeline {string.Join(' ', arguments)} did not finish in {timeout}; output so far:\n{await output}\n{await error}");
        }
        return new Result(process.ExitCode, await output, await error);
    }
}
