using System.Diagnostics;
using System.Globalization;
using Npgsql;
using Synchro.Pipeline.LoadHarness.Sampling;

namespace Synchro.Pipeline.LoadHarness.Walsender;

/// <summary>What the walsender processes serving one slot used during a phase; <see cref="Pids"/> has more than one after a reconnect.</summary>
internal sealed record WalsenderUsage(double CpuSeconds, IReadOnlyList<int> Pids)
{
    public int Processes => Pids.Count;
}

/// <summary>
/// The CPU the walsender serving one slot uses over a phase: its pid is the slot's <c>active_pid</c>, its user and system
/// time fields 14 and 15 of <c>/proc/&lt;pid&gt;/stat</c> (the harness's server runs on this machine). Read at the start,
/// every <see cref="DefaultInterval"/> in the background and at the end; the sum over every pid that served the slot
/// meanwhile, since a reconnect starts another walsender (an ended one keeps the time read last, at most one interval
/// before it ended).
/// </summary>
/// <remarks>
/// A walsender is a process of its own per replication connection: one that started during the phase counts from zero
/// (its connection's start-up included), one that was running before counts from its time at the phase's start.
/// The slot is queried once a second while its walsender lives, and every interval while it has none.
/// </remarks>
internal sealed class WalsenderCpu : IAsyncDisposable
{
    public static readonly TimeSpan DefaultInterval = TimeSpan.FromMilliseconds(20);
    private static readonly TimeSpan s_requery = TimeSpan.FromSeconds(1);

    // sysconf(_SC_CLK_TCK): the unit of /proc's times; 100 on Linux, read once from getconf.
    private static readonly Lazy<long> s_ticksPerSecond = new(ReadTicksPerSecond);

    private readonly NpgsqlConnection _connection;
    private readonly string _slot;
    private readonly TimeSpan _interval;
    private readonly long _phaseStart;
    private readonly Dictionary<int, (long Baseline, long Last)> _pids = [];
    private readonly SamplingLoop _sampling = new();
    private int? _current;
    private long _lastQuery;
    private WalsenderUsage? _usage;

    private WalsenderCpu(NpgsqlConnection connection, string slot, TimeSpan interval)
    {
        _connection = connection;
        _slot = slot;
        _interval = interval;
        _phaseStart = UptimeTicks();
    }

    /// <summary>Whether this machine has <c>/proc</c> (Linux); elsewhere every usage is null.</summary>
    public static bool Supported => File.Exists("/proc/uptime");

    /// <summary>Starts measuring the walsender of <paramref name="slot"/>: reads it now if it runs, then in the background.</summary>
    public static async Task<WalsenderCpu?> StartAsync(string connectionString, string slot, CancellationToken ct, TimeSpan? interval = null)
    {
        if (!Supported)
            return null;
        // Named as the server-cost sampler's, so that its backend is not counted either.
        var connection = new NpgsqlConnection(ServerCost.ServerCostSampler.SamplerConnectionString(connectionString));
        await connection.OpenAsync(ct);
        var meter = new WalsenderCpu(connection, slot, interval ?? DefaultInterval);
        await meter.SampleAsync(forceQuery: true, ct);
        meter._sampling.Start(meter._interval, () => meter.SampleAsync(forceQuery: false, CancellationToken.None));
        return meter;
    }

    /// <summary>Reads the walsender a last time and returns the CPU its processes used since the start.</summary>
    public async Task<WalsenderUsage> StopAsync(CancellationToken ct)
    {
        if (_usage is not null)
            return _usage;
        await _sampling.StopAsync();
        await SampleAsync(forceQuery: true, ct);
        var ticks = _pids.Values.Sum(p => p.Last - p.Baseline);
        _usage = new WalsenderUsage((double)ticks / s_ticksPerSecond.Value, [.. _pids.Keys]);
        return _usage;
    }

    public async ValueTask DisposeAsync()
    {
        await _sampling.StopQuietlyAsync();
        await _connection.DisposeAsync();
        _sampling.Dispose();
    }


    private async Task SampleAsync(bool forceQuery, CancellationToken ct)
    {
        if (_current is { } running)
        {
            if (ReadStat(running) is { } stat)
                _pids[running] = (_pids[running].Baseline, stat.Ticks);
            else
                _current = null;
        }
        if (_current is not null && !forceQuery && Stopwatch.GetElapsedTime(_lastQuery) < s_requery)
            return;

        _lastQuery = Stopwatch.GetTimestamp();
        await using var query = new NpgsqlCommand("SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1", _connection);
        query.Parameters.AddWithValue(_slot);
        if (await query.ExecuteScalarAsync(ct) is not int pid || pid == _current)
            return;
        if (ReadStat(pid) is not { } found)
            return;
        if (_pids.TryGetValue(pid, out var known))
            _pids[pid] = (known.Baseline, found.Ticks);
        else
            _pids[pid] = (found.StartTime >= _phaseStart ? 0 : found.Ticks, found.Ticks);
        _current = pid;
    }

    /// <summary>User plus system time (fields 14 and 15) and the start time after boot (field 22), in clock ticks; null once the process ended.</summary>
    private static (long Ticks, long StartTime)? ReadStat(int pid)
    {
        string text;
        try
        {
            text = File.ReadAllText($"/proc/{pid}/stat");
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException or IOException)
        {
            return null;
        }
        // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so the fields are counted after its last ')'.
        var fields = text[(text.LastIndexOf(')') + 2)..].Split(' ');
        // fields[0] is field 3 (state): field n is fields[n - 3].
        return (Long(fields[11]) + Long(fields[12]), Long(fields[19]));
    }

    /// <summary>Clock ticks since boot: the unit of /proc's start times.</summary>
    internal static long UptimeTicks()
    {
        var seconds = double.Parse(File.ReadAllText("/proc/uptime").Split(' ')[0], NumberStyles.Float, CultureInfo.InvariantCulture);
        return (long)(seconds * s_ticksPerSecond.Value);
    }

    /// <summary>sysconf(_SC_CLK_TCK): the unit of /proc's times.</summary>
    internal static long TicksPerSecond => s_ticksPerSecond.Value;

    private static long ReadTicksPerSecond()
    {
        try
        {
            using var getconf = Process.Start(new ProcessStartInfo("getconf", "CLK_TCK") { RedirectStandardOutput = true, UseShellExecute = false });
            if (getconf is not null)
            {
                var output = getconf.StandardOutput.ReadToEnd();
                getconf.WaitForExit();
                if (getconf.ExitCode == 0 && long.TryParse(output.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var ticks) && ticks > 0)
                    return ticks;
            }
        }
        catch (System.ComponentModel.Win32Exception)
        {
            // No getconf: the value every Linux build has.
        }
        return 100;
    }

    private static long Long(string field) => long.Parse(field, NumberStyles.None, CultureInfo.InvariantCulture);
}
