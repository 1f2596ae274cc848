using System.Diagnostics;
using System.Text;

namespace Synchro.Pipeline.LoadHarness.Contenders;

/// <summary>What a finished (or killed) child process left.</summary>
internal sealed record ChildExit(int ExitCode, string Output, string Error, bool TimedOut, TimeSpan Elapsed);

/// <summary>Runs one child process to its end with a time limit; on the limit or cancellation the whole tree is killed.</summary>
internal static class ChildProcess
{
    public static async Task<ChildExit> RunAsync(ProcessStartInfo start, TimeSpan timeout, CancellationToken ct)
    {
        start.RedirectStandardOutput = true;
        start.RedirectStandardError = true;
        start.UseShellExecute = false;
        var output = new StringBuilder();
        var error = new StringBuilder();
        using var process = new Process { StartInfo = start };
        process.OutputDataReceived += (_, e) => Append(output, e.Data);
        process.ErrorDataReceived += (_, e) => Append(error, e.Data);
        var clock = Stopwatch.StartNew();
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        using var limit = CancellationTokenSource.CreateLinkedTokenSource(ct);
        limit.CancelAfter(timeout);
        var timedOut = false;
        try
        {
            await process.WaitForExitAsync(limit.Token);
        }
        catch (OperationCanceledException)
        {
            timedOut = !ct.IsCancellationRequested;
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync(CancellationToken.None);
        }
        // The parameterless wait drains the redirected streams.
        process.WaitForExit();
        var elapsed = clock.Elapsed;
        ct.ThrowIfCancellationRequested();
        lock (output)
        {
            lock (error)
                return new ChildExit(process.ExitCode, output.ToString(), error.ToString(), timedOut, elapsed);
        }
    }

    private static void Append(StringBuilder builder, string? line)
    {
        if (line is null)
            return;
        lock (builder)
            builder.AppendLine(line);
    }
}
