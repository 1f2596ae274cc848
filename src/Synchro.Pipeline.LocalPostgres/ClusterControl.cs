using System.ComponentModel;
using System.Diagnostics;
using System.Globalization;

namespace Synchro.Pipeline.LocalPostgres;

/// <summary>Runs <c>initdb</c> and <c>pg_ctl</c> against one <see cref="ClusterDirectory"/>, as the server account.</summary>
internal sealed class ClusterControl
{
    private const string StartTimeoutSeconds = "60";
    private const string StopTimeoutSeconds = "30";

    private readonly PostgresBinaries _binaries;
    private readonly ServerAccount _account;
    private readonly ClusterDirectory _directory;

    public ClusterControl(PostgresBinaries binaries, ServerAccount account, ClusterDirectory directory)
    {
        _binaries = binaries;
        _account = account;
        _directory = directory;
    }

    /// <summary>
    /// Creates the cluster: TCP connections (127.0.0.1) authenticate with scram-sha-256 and the superuser's password read
    /// from <paramref name="passwordFile"/>; the Unix socket trusts, since only its directory's owner can reach it.
    /// </summary>
    public async Task InitDbAsync(string passwordFile, CancellationToken ct)
    {
        var result = await RunAsync(
            _binaries.InitDb,
            [
                "-D", _directory.Data, "--auth-host=scram-sha-256", "--auth-local=trust", "-U", "postgres", "--pwfile", passwordFile,
                "-E", "UTF8", "--locale=C", "--no-sync",
            ],
            ct).ConfigureAwait(false);
        if (!result.Succeeded)
        {
            throw new LocalPostgresException($"initdb failed (exit {result.ExitCode}) in {_directory.Data}:\n{result.Diagnostics}");
        }
    }

    /// <summary>Starts the server and waits until it accepts connections (<c>pg_ctl -w</c>).</summary>
    public Task<ProcessResult> StartAsync(CancellationToken ct) =>
        RunAsync(
            _binaries.PgCtl,
            ["start", "-w", "-t", StartTimeoutSeconds, "-D", _directory.Data, "-l", _directory.LogFile],
            ct);

    /// <summary>Restarts the server (fast or immediate shutdown) and waits until it accepts connections again.</summary>
    public Task<ProcessResult> RestartAsync(bool immediate, CancellationToken ct) =>
        RunAsync(
            _binaries.PgCtl,
            ["restart", "-w", "-t", StartTimeoutSeconds, "-m", immediate ? "immediate" : "fast", "-D", _directory.Data, "-l", _directory.LogFile],
            ct);

    /// <summary>Ends recovery on a standby (<c>pg_ctl promote</c>) and waits until it accepts writes on its new timeline.</summary>
    public Task<ProcessResult> PromoteAsync(CancellationToken ct) =>
        RunAsync(_binaries.PgCtl, ["promote", "-w", "-t", StartTimeoutSeconds, "-D", _directory.Data], ct);

    /// <summary>
    /// Stops the server if one holds the data directory; falls back to killing the postmaster when pg_ctl fails.
    /// Returns false only when a server may still be running.
    /// </summary>
    public async Task<bool> StopAsync(bool immediate, CancellationToken ct)
    {
        if (_directory.ReadPostmasterPid() is null)
        {
            return true;
        }

        var result = await RunAsync(
            _binaries.PgCtl,
            ["stop", "-w", "-t", StopTimeoutSeconds, "-m", immediate ? "immediate" : "fast", "-D", _directory.Data],
            ct).ConfigureAwait(false);
        return result.Succeeded || TryKillPostmaster();
    }

    /// <summary>The program and arguments that stop the server from a terminal, wrapped for the server account.</summary>
    public (string FileName, IReadOnlyList<string> Arguments) StopCommand() =>
        _account.Command(_binaries.PgCtl, ["stop", "-D", _directory.Data]);

    /// <summary>
    /// SIGKILL to the postmaster, then to every process still working in the data directory (the server's children all
    /// run there), as a machine failure would. Returns false when a process survived.
    /// </summary>
    public bool Kill()
    {
        var data = Path.GetFullPath(_directory.Data);
        var postmaster = _directory.ReadPostmasterPid();
        for (var round = 0; round < KillRounds; round++)
        {
            var processes = ProcessesIn(data);
            if (processes.Count == 0)
            {
                return true;
            }

            // The postmaster first, so it starts no more children.
            foreach (var process in processes.OrderBy(p => p.Id == postmaster ? 0 : 1))
            {
                using (process)
                {
                    try
                    {
                        process.Kill();
                        process.WaitForExit(TimeSpan.FromSeconds(10));
                    }
                    catch (InvalidOperationException)
                    {
                    }
                    catch (Win32Exception)
                    {
                    }
                }
            }
        }

        return ProcessesIn(data).Count == 0;
    }

    // A child forked while the postmaster died is found in the next round.
    private const int KillRounds = 5;

    private static List<Process> ProcessesIn(string directory)
    {
        var found = new List<Process>();
        foreach (var entry in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(entry), NumberStyles.None, CultureInfo.InvariantCulture, out var pid))
            {
                continue;
            }

            string? cwd;
            try
            {
                cwd = new DirectoryInfo(Path.Combine(entry, "cwd")).LinkTarget;
            }
            catch (IOException)
            {
                continue;
            }
            catch (UnauthorizedAccessException)
            {
                continue;
            }

            if (cwd == directory)
            {
                try
                {
                    found.Add(Process.GetProcessById(pid));
                }
                catch (ArgumentException)
                {
                }
            }
        }

        return found;
    }

    private bool TryKillPostmaster()
    {
        if (_directory.ReadPostmasterPid() is not { } pid)
        {
            return true;
        }

        try
        {
            using var process = Process.GetProcessById(pid);

            // A stale pid file may name an unrelated process that reused the PID.
            if (process.ProcessName != "postgres")
            {
                return true;
            }

            process.Kill();
            return process.WaitForExit(TimeSpan.FromSeconds(10));
        }
        catch (ArgumentException)
        {
            return true;
        }
        catch (InvalidOperationException)
        {
            return true;
        }
        catch (Win32Exception)
        {
            return false;
        }
    }

    private Task<ProcessResult> RunAsync(string program, IReadOnlyList<string> arguments, CancellationToken ct)
    {
        var (fileName, wrapped) = _account.Command(program, arguments);
        return ProcessRunner.RunAsync(fileName, wrapped, _directory.Root, ct);
    }
}
