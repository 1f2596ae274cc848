using System.Diagnostics;
using System.Globalization;

namespace Synchro.Pipeline.LoadHarness.Contenders;

/// <summary>This process's CPU time, allocations and peak RSS, taken at the start and end of a drain.</summary>
internal readonly record struct ProcessUsage(TimeSpan Cpu, long Allocated, long Timestamp)
{
    public static ProcessUsage Now()
    {
        using var self = Process.GetCurrentProcess();
        return new(self.TotalProcessorTime, GC.GetTotalAllocatedBytes(precise: true), Stopwatch.GetTimestamp());
    }

    /// <summary>The result so far: wall, CPU and allocations since <paramref name="start"/>, peak RSS of the whole process.</summary>
    public static ContenderResult Since(ProcessUsage start, ContenderResult result)
    {
        var end = Now();
        return result with
        {
            WallSeconds = Stopwatch.GetElapsedTime(start.Timestamp, end.Timestamp).TotalSeconds,
            CpuSeconds = (end.Cpu - start.Cpu).TotalSeconds,
            AllocatedBytes = end.Allocated - start.Allocated,
            PeakRssBytes = PeakResidentBytes(),
        };
    }

    /// <summary>VmHWM from /proc/self/status (Linux); null elsewhere.</summary>
    public static long? PeakResidentBytes()
    {
        const string Key = "VmHWM:";
        if (!File.Exists("/proc/self/status"))
            return null;
        var line = File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith(Key, StringComparison.Ordinal));
        if (line is null)
            return null;
        var kilobytes = line[Key.Length..].Trim().Split(' ')[0];
        return long.Parse(kilobytes, NumberStyles.None, CultureInfo.InvariantCulture) * 1024;
    }
}
