using System.Diagnostics;
using System.Text;
using Npgsql;
using Synchro.Pipeline.LocalPostgres;

using Synchro.Pipeline.Tests.Infrastructure;

namespace Synchro.Pipeline.Tests.Replication;

/// <summary>
/// <c>pg_recvlogical</c> streaming a pgoutput slot to /dev/null: another consumer holding the slot active.
/// Disposing kills it.
/// </summary>
internal sealed class SlotConsumerProcess : IAsyncDisposable
{
    private static readonly TimeSpan s_activeTimeout = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan s_pollInterval = TimeSpan.FromMilliseconds(50);

    private readonly Process _process;
    private readonly StringBuilder _stderr = new();

    private SlotConsumerProcess(Process process)
    {
        _process = process;
    }

    /// <summary>Starts streaming <paramref name="slot"/> and returns once the server reports it active.</summary>
    /// <returns>The consumer, and the walsender's pid that <c>pg_replication_slots.active_pid</c> shows.</returns>
    public static async Task<(SlotConsumerProcess Consumer, int WalSenderPid)> StartAsync(
        LocalPostgresServer server, string connectionString, string slot, string publication)
    {
        var builder = new NpgsqlConnectionStringBuilder(connectionString);
        var start = new ProcessStartInfo(server.ClientProgram("pg_recvlogical"))
        {
            ArgumentList =
            {
                "--dbname", $"host={builder.Host} port={builder.Port} user={builder.Username} dbname={builder.Database}",
                "--slot", slot,
                "--start",
                "--no-loop",
                "--file", "/dev/null",
                "--option", "proto_version=1",
                "--option", $"publication_names={publication}",
            },
            UseShellExecute = false,
            RedirectStandardError = true,
            RedirectStandardOutput = true,
        };
        if (!string.IsNullOrEmpty(builder.Password))
            start.Environment["PGPASSWORD"] = builder.Password;
        var process = Process.Start(start) ?? throw new InvalidOperationException("pg_recvlogical did not start.");
        var consumer = new SlotConsumerProcess(process);
        process.ErrorDataReceived += (_, e) =>
        {
            lock (consumer._stderr)
                consumer._stderr.AppendLine(e.Data);
        };
        process.BeginErrorReadLine();
        process.BeginOutputReadLine();

        try
        {
            return (consumer, await consumer.WaitUntilActiveAsync(connectionString, slot));
        }
        catch
        {
            await consumer.DisposeAsync();
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
            _process.Kill(entireProcessTree: true);
        await _process.WaitForExitAsync();
        _process.Dispose();
    }

    private async Task<int> WaitUntilActiveAsync(string connectionString, string slot)
    {
        var deadline = DateTime.UtcNow + s_activeTimeout;
        while (DateTime.UtcNow < deadline)
        {
            if (_process.HasExited)
            {
                lock (_stderr)
                    throw new InvalidOperationException($"pg_recvlogical exited with {_process.ExitCode}: {_stderr}");
            }

            var pid = await Sql.ScalarAsync<object>(connectionString,
                "SELECT coalesce((SELECT active_pid FROM pg_replication_slots WHERE slot_name = @slot AND active), 0)", ("slot", slot));
            if (pid is int active && active != 0)
                return active;
            await Task.Delay(s_pollInterval);
        }

        throw new TimeoutException($"Slot {slot} did not become active within {s_activeTimeout}.");
    }
}
