using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace Synchro.Pipeline.Tests.Cli;

/// <summary>What a finished <c>synchro-pipeline</c> process left: its exit code, standard output and standard error.</summary>
internal sealed record CliResult(int ExitCode, string Output, string Error)
{
    public override string ToString() => $"exit {ExitCode}{Environment.NewLine}stdout:{Environment.NewLine}{Output}{Environment.NewLine}stderr:{Environment.NewLine}{Error}";
}

/// <summary>
/// The real CLI (<c>synchro-pipeline.dll</c>, built next to the tests through the project reference) run as a
/// process with <c>dotnet</c>, its output redirected, as a script or a service manager would run it.
/// </summary>
internal sealed class CliProcess : IDisposable
{
    // A one-shot command against the local server takes about a second; this only bounds a hang.
    private static readonly TimeSpan s_oneShotTimeout = TimeSpan.FromMinutes(2);

    private readonly Process _process;
    private readonly StringBuilder _output = new();
    private readonly StringBuilder _error = new();

    private CliProcess(Process process)
    {
        _process = process;
        process.OutputDataReceived += (_, e) => Append(_output, e.Data);
        process.ErrorDataReceived += (_, e) => Append(_error, e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    public int Id => _process.Id;

    public bool HasExited => _process.HasExited;

    /// <summary>Standard output so far.</summary>
    public string Output
    {
        get
        {
            lock (_output)
                return _output.ToString();
        }
    }

    /// <summary>Standard error so far.</summary>
    public string Error
    {
        get
        {
            lock (_error)
                return _error.ToString();
        }
    }

    /// <summary>Starts <c>synchro-pipeline <paramref name="arguments"/></c> in <paramref name="workingDirectory"/> with extra environment variables.</summary>
    public static CliProcess Start(string workingDirectory, IReadOnlyDictionary<string, string>? environment, params string[] arguments)
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "synchro-pipeline.dll");
        Assert.True(File.Exists(dll), $"{dll} is missing; the test project references the CLI project so that it is built here.");
        var start = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
        };
        start.ArgumentList.Add(dll);
        foreach (var argument in arguments)
            start.ArgumentList.Add(argument);
        foreach (var (name, value) in environment ?? new Dictionary<string, string>())
            start.Environment[name] = value;
        return new CliProcess(Process.Start(start)!);
    }

    /// <summary>Runs a command to its end.</summary>
    public static async Task<CliResult> RunInAsync(string workingDirectory, IReadOnlyDictionary<string, string>? environment, params string[] arguments)
    {
        using var process = Start(workingDirectory, environment, arguments);
        return await process.WaitAsync(s_oneShotTimeout);
    }

    /// <summary>Runs a long command to its end in an empty directory, killing it after <paramref name="timeout"/>.</summary>
    public static async Task<CliResult> RunAsync(TimeSpan timeout, IReadOnlyDictionary<string, string>? environment, params string[] arguments)
    {
        using var directory = new WorkingDirectory();
        using var process = Start(directory.Path, environment, arguments);
        return await process.WaitAsync(timeout);
    }

    /// <summary>Runs a command to its end in an empty directory (no configuration file), with the inherited environment.</summary>
    public static async Task<CliResult> RunAsync(params string[] arguments)
    {
        using var directory = new WorkingDirectory();
        return await RunInAsync(directory.Path, null, arguments);
    }

    /// <summary>Sends SIGTERM, as a service manager stopping the service does, and waits for the exit.</summary>
    public async Task<CliResult> TerminateAsync(TimeSpan timeout)
    {
        using (var kill = Process.Start("/bin/kill", ["-TERM", Id.ToString(CultureInfo.InvariantCulture)]))
        {
            await kill.WaitForExitAsync();
            Assert.Equal(0, kill.ExitCode);
        }
        return await WaitAsync(timeout);
    }

    /// <summary>Sends SIGINT, as Ctrl+C on a terminal does, and waits for the exit.</summary>
    public async Task<CliResult> InterruptAsync(TimeSpan timeout)
    {
        using (var kill = Process.Start("/bin/kill", ["-INT", Id.ToString(CultureInfo.InvariantCulture)]))
        {
            await kill.WaitForExitAsync();
            Assert.Equal(0, kill.ExitCode);
        }
        return await WaitAsync(timeout);
    }

    /// <summary>Waits for the exit (and the end of its output); kills the process and fails if it takes longer than <paramref name="timeout"/>.</summary>
    public async Task<CliResult> WaitAsync(TimeSpan timeout)
    {
        try
        {
            await _process.WaitForExitAsync().WaitAsync(timeout);
        }
        catch (TimeoutException)
        {
            _process.Kill(entireProcessTree: true);
            throw new TimeoutException($"synchro-pipeline did not exit within {timeout}.{Environment.NewLine}stdout: {Output}{Environment.NewLine}stderr: {Error}");
        }
        // The parameterless wait also drains the redirected streams.
        await _process.WaitForExitAsync();
        return new CliResult(_process.ExitCode, Output, Error);
    }

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            _process.WaitForExit();
        }
        _process.Dispose();
    }

    private static void Append(StringBuilder text, string? line)
    {
        if (line is null)
            return;
        lock (text)
            text.AppendLine(line);
    }
}
