using System.ComponentModel;
using System.Diagnostics;

namespace Synchro.Pipeline.LocalPostgres;

internal static class ProcessRunner
{
    /// <summary>
    /// Runs <paramref name="fileName"/> with an argument list (never a shell string), capturing both output streams.
    /// The child gets <c>LC_ALL=C</c> and no libpq <c>PG*</c> variables, so nothing from the caller's environment
    /// redirects it to another cluster or changes its messages.
    /// </summary>
    public static async Task<ProcessResult> RunAsync(
        string fileName,
        IEnumerable<string> arguments,
        string? workingDirectory,
        CancellationToken ct)
    {
        var startInfo = new ProcessStartInfo(fileName)
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = workingDirectory ?? string.Empty,
        };
        foreach (var argument in arguments)
        {
            startInfo.ArgumentList.Add(argument);
        }

        var environment = startInfo.Environment;
        foreach (var name in environment.Keys.Where(IsLibpqVariable).ToList())
        {
            environment.Remove(name);
        }

        environment["LC_ALL"] = "C";

        Process process;
        try
        {
            process = Process.Start(startInfo) ?? throw new LocalPostgresException($"Could not start '{fileName}'.");
        }
        catch (Win32Exception ex)
        {
            throw new LocalPostgresException($"Could not start '{fileName}': {ex.Message}", ex);
        }

        using (process)
        {
            process.StandardInput.Close();
            var stdout = process.StandardOutput.ReadToEndAsync(CancellationToken.None);
            var stderr = process.StandardError.ReadToEndAsync(CancellationToken.None);
            try
            {
                await process.WaitForExitAsync(ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                TryKill(process);
                throw;
            }

            return new ProcessResult(process.ExitCode, await stdout.ConfigureAwait(false), await stderr.ConfigureAwait(false));
        }
    }

    private static bool IsLibpqVariable(string name) => name.StartsWith("PG", StringComparison.Ordinal);

    private static void TryKill(Process process)
    {
        try
        {
            process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
        }
        catch (Win32Exception)
        {
        }
    }
}
