using System.Diagnostics;
using System.Globalization;
using Npgsql;

namespace Synchro.Pipeline.Tests.Pipeline;

/// <summary>The pipeline running in its own process (Synchro.Pipeline.TestHost), to be killed or measured.</summary>
internal sealed class PipelineHostProcess : IDisposable
{
    private readonly Process _process;
    private readonly List<string> _errors = [];

    private PipelineHostProcess(Process process) => _process = process;

    /// <summary>What the process wrote to standard error so far: the pipeline's events, one line each (<c>event &lt;id&gt; &lt;level&gt;: &lt;message&gt;</c>).</summary>
    public IReadOnlyList<string> Errors
    {
        get
        {
            lock (_errors)
                return [.. _errors];
        }
    }

    /// <summary>
    /// Whether a walsender streams from slot <c>$1</c>. An active slot alone is not enough: the slot is active
    /// while the pipeline creates it, before its start-up (and the sidecar tables' migration) is done.
    /// </summary>
    public const string SlotStreamingQuery = """
        SELECT EXISTS (SELECT FROM pg_replication_slots s JOIN pg_stat_replication r ON r.pid = s.active_pid
                       WHERE s.slot_name = $1 AND r.state IN ('catchup', 'streaming'))
        """;

    public bool HasExited => _process.HasExited;

    public int ExitCode => _process.ExitCode;

    /// <summary>Throws, with the exit code and what the process logged, once it has exited; for a wait that must not outlive it.</summary>
    public Task ThrowIfExitedAsync() => HasExited
        ? throw new InvalidOperationException($"The pipeline process exited with code {ExitCode}: {string.Join(Environment.NewLine, Errors)}")
        : Task.CompletedTask;

    public static PipelineHostProcess Start(string connectionString, string slot, string publication, string table, string ownerColumn, int maxBatchRows, bool twoPhase = false,
        string? childTable = null, string? childForeignKey = null, int? cascadeChunkRows = null, bool waitForLock = false, string[]? idColumns = null)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
        };
        start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "Synchro.Pipeline.TestHost.dll"));
        foreach (var arg in new[] { connectionString, slot, publication, table, ownerColumn, maxBatchRows.ToString(CultureInfo.InvariantCulture) })
            start.ArgumentList.Add(arg);
        if (twoPhase)
            start.ArgumentList.Add("two-phase");
        if (waitForLock)
            start.ArgumentList.Add("wait-for-lock");
        if (childTable is not null)
            start.ArgumentList.Add($"child={childTable}:{childForeignKey}");
        if (idColumns is not null)
            start.ArgumentList.Add("id=" + string.Join(',', idColumns));
        if (cascadeChunkRows is { } chunkRows)
            start.ArgumentList.Add(string.Create(CultureInfo.InvariantCulture, $"chunk-rows={chunkRows}"));
        var process = Process.Start(start)!;
        var host = new PipelineHostProcess(process);
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null)
                return;
            lock (host._errors)
                host._errors.Add(e.Data);
        };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return host;
    }

    /// <summary>Waits until the process streams from its slot; fails at once, with its events, when <paramref name="host"/> exits meanwhile.</summary>
    public static async Task WaitForSlotAsync(string connectionString, string slot, PipelineHostProcess? host = null)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        await using var dataSource = NpgsqlDataSource.Create(connectionString);
        while (true)
        {
            await using var command = dataSource.CreateCommand(SlotStreamingQuery);
            command.Parameters.AddWithValue(slot);
            if ((bool)(await command.ExecuteScalarAsync())!)
                return;
            if (host is { HasExited: true })
                throw new InvalidOperationException($"The pipeline process exited with code {host.ExitCode} before streaming from {slot}: {string.Join(Environment.NewLine, host.Errors)}");
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"The pipeline process did not start streaming from {slot} in 30 s.");
            await Task.Delay(50);
        }
    }

    /// <summary>SIGKILL: no chance to finish anything.</summary>
    public async Task KillAsync()
    {
        _process.Kill();
        await _process.WaitForExitAsync();
    }

    /// <summary>The process's peak resident set size so far (VmHWM), or 0 once it has exited.</summary>
    public long PeakResidentBytes()
    {
        try
        {
            var line = File.ReadLines($"/proc/{_process.Id}/status").FirstOrDefault(l => l.StartsWith("VmHWM:", StringComparison.Ordinal));
            return line is null ? 0 : long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
        }
        catch (IOException)
        {
            return 0;
        }
    }

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            _process.Kill();
            _process.WaitForExit();
        }
        _process.Dispose();
    }
}
