namespace Synchro.Pipeline.LoadHarness.ServerCost;

/// <summary>
/// CPU per process kind over a phase, from readings of each process's clock ticks. A process that started during the
/// phase counts from zero (its start-up included); one that ran before counts from its first reading. An ended process
/// keeps its last reading, at most one sampling interval before it ended. A process's kind is the last one it was
/// given: a backend may be seen as a postmaster child before <c>pg_stat_activity</c> lists it.
/// </summary>
internal sealed class CpuLedger(long phaseStartTicks)
{
    private readonly Dictionary<int, (string Kind, long Baseline, long Last)> _processes = [];

    public void Observe(int pid, string kind, ProcStat stat)
    {
        if (_processes.TryGetValue(pid, out var known))
            _processes[pid] = (kind, known.Baseline, Math.Max(known.Last, stat.Ticks));
        else
            _processes[pid] = (kind, stat.StartTime >= phaseStartTicks ? 0 : stat.Ticks, stat.Ticks);
    }

    /// <summary>The kind <paramref name="pid"/> was last given; null when it was never seen.</summary>
    public string? KindOf(int pid) => _processes.TryGetValue(pid, out var known) ? known.Kind : null;

    /// <summary>Seconds and processes per kind, every kind of <see cref="ServerProcessKind.All"/> present (zero when none was seen).</summary>
    public (Dictionary<string, double> Seconds, Dictionary<string, int> Processes) Totals(long ticksPerSecond)
    {
        var seconds = ServerProcessKind.All.ToDictionary(k => k.Kind, _ => 0.0);
        var processes = ServerProcessKind.All.ToDictionary(k => k.Kind, _ => 0);
        foreach (var (kind, baseline, last) in _processes.Values)
        {
            seconds[kind] += (double)(last - baseline) / ticksPerSecond;
            processes[kind]++;
        }
        return (seconds, processes);
    }
}
