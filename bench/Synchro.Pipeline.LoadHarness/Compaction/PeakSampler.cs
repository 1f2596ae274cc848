using System.Diagnostics;
using System.Globalization;
using Npgsql;
using Synchro.Pipeline.LoadHarness.Sampling;

namespace Synchro.Pipeline.LoadHarness.Compaction;

/// <summary>
/// Memory and CPU over one phase. The harness process (where compaction runs): working set before, peak working set and
/// peak managed heap, allocations and CPU. The server backends whose <c>application_name</c> is the compactor's: peak of
/// their summed private resident memory (<c>RssAnon</c> of <c>/proc/&lt;pid&gt;/status</c>; shared buffers are not
/// counted) and their CPU (<c>/proc/&lt;pid&gt;/stat</c>, from when each was first seen).
/// </summary>
internal sealed record PhaseUsage
{
    public double Seconds { get; init; }
    public long HarnessWorkingSetBeforeBytes { get; init; }
    public long HarnessPeakWorkingSetBytes { get; init; }
    public long HarnessPeakManagedBytes { get; init; }
    public long HarnessAllocatedBytes { get; init; }
    public double HarnessCpuSeconds { get; init; }
    public long? BackendPeakPrivateBytes { get; init; }
    public double? BackendCpuSeconds { get; init; }
    public int Backends { get; init; }
    public int Samples { get; init; }
}

/// <summary>Samples <see cref="PhaseUsage"/> every <see cref="Interval"/> in the background until stopped.</summary>
internal sealed class PeakSampler : IAsyncDisposable
{
    public static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(100);

    private readonly Process _self = Process.GetCurrentProcess();
    private readonly NpgsqlConnection _connection;
    private readonly string _applicationName;
    private readonly SamplingLoop _sampling = new();
    private readonly Dictionary<int, (long First, long Last)> _backendTicks = [];
    private readonly long _started = Stopwatch.GetTimestamp();
    private readonly TimeSpan _cpuBefore;
    private readonly long _allocatedBefore = GC.GetTotalAllocatedBytes(precise: true);
    private readonly long _workingSetBefore;
    private long _peakWorkingSet;
    private long _peakManaged;
    private long? _peakBackend;
    private int _samples;

    private PeakSampler(NpgsqlConnection connection, string applicationName)
    {
        _connection = connection;
        _applicationName = applicationName;
        _cpuBefore = _self.TotalProcessorTime;
        _workingSetBefore = _self.WorkingSet64;
    }

    /// <remarks><paramref name="applicationName"/> is the compactor's connections' <c>application_name</c>: the backends to measure.</remarks>
    public static async Task<PeakSampler> StartAsync(string connectionString, string applicationName, CancellationToken ct)
    {
        var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(ct);
        var sampler = new PeakSampler(connection, applicationName);
        await sampler.SampleAsync(ct);
        sampler._sampling.Start(Interval, () => sampler.SampleAsync(CancellationToken.None));
        return sampler;
    }

    public async Task<PhaseUsage> StopAsync(CancellationToken ct)
    {
        await _sampling.StopAsync();
        await SampleAsync(ct);
        _self.Refresh();
        var ticks = _backendTicks.Values.Sum(t => t.Last - t.First);
        return new PhaseUsage
        {
            Seconds = Stopwatch.GetElapsedTime(_started).TotalSeconds,
            HarnessWorkingSetBeforeBytes = _workingSetBefore,
            HarnessPeakWorkingSetBytes = _peakWorkingSet,
            HarnessPeakManagedBytes = _peakManaged,
            HarnessAllocatedBytes = GC.GetTotalAllocatedBytes(precise: true) - _allocatedBefore,
            HarnessCpuSeconds = (_self.TotalProcessorTime - _cpuBefore).TotalSeconds,
            BackendPeakPrivateBytes = _peakBackend,
            BackendCpuSeconds = _backendTicks.Count > 0 ? ticks / 100.0 : null,
            Backends = _backendTicks.Count,
            Samples = _samples,
        };
    }

    public async ValueTask DisposeAsync()
    {
        await _sampling.StopQuietlyAsync();
        await _connection.DisposeAsync();
        _self.Dispose();
        _sampling.Dispose();
    }


    private async Task SampleAsync(CancellationToken ct)
    {
        _samples++;
        _self.Refresh();
        _peakWorkingSet = Math.Max(_peakWorkingSet, _self.WorkingSet64);
        _peakManaged = Math.Max(_peakManaged, GC.GetTotalMemory(forceFullCollection: false));
        if (!File.Exists("/proc/self/status"))
            return;

        await using var query = new NpgsqlCommand("SELECT pid FROM pg_stat_activity WHERE application_name = $1", _connection);
        query.Parameters.AddWithValue(_applicationName);
        long privateBytes = 0;
        var seen = false;
        await using var reader = await query.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            var pid = reader.GetInt32(0);
            if (ReadProc(pid) is not { } proc)
                continue;
            seen = true;
            privateBytes += proc.RssAnonBytes;
            _backendTicks[pid] = _backendTicks.TryGetValue(pid, out var known) ? (known.First, proc.Ticks) : (proc.Ticks, proc.Ticks);
        }
        if (seen)
            _peakBackend = Math.Max(_peakBackend ?? 0, privateBytes);
    }

    /// <summary>RssAnon (kB in /proc/pid/status) and user + system clock ticks (fields 14 and 15 of /proc/pid/stat); null once it ended.</summary>
    private static (long RssAnonBytes, long Ticks)? ReadProc(int pid)
    {
        try
        {
            var status = File.ReadLines($"/proc/{pid}/status").FirstOrDefault(l => l.StartsWith("RssAnon:", StringComparison.Ordinal));
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            if (status is null)
                return null;
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            var kilobytes = long.Parse(status["RssAnon:".Length..].Trim().Split(' ')[0], NumberStyles.None, CultureInfo.InvariantCulture);
            return (kilobytes * 1024, Long(fields[11]) + Long(fields[12]));
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException or IOException)
        {
            return null;
        }
    }

    private static long Long(string field) => long.Parse(field, NumberStyles.None, CultureInfo.InvariantCulture);
}
