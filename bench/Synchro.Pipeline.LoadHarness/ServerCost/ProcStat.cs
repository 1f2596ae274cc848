using System.Globalization;

namespace Synchro.Pipeline.LoadHarness.ServerCost;

/// <summary>The fields of <c>/proc/&lt;pid&gt;/stat</c> the harness reads: parent pid, user plus system time and start time after boot, in clock ticks.</summary>
internal readonly record struct ProcStat(int ParentPid, long Ticks, long StartTime)
{
    /// <summary>Reads <paramref name="pid"/>'s stat; null once the process ended.</summary>
    public static ProcStat? Read(int pid)
    {
        try
        {
            return Parse(File.ReadAllText($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/stat"));
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException or IOException)
        {
            return null;
        }
    }

    /// <summary>"pid (comm) state ppid ...": comm may hold spaces and parentheses, so the fields are counted after its last ')'.</summary>
    /// <exception cref="FormatException">Not a stat line.</exception>
    public static ProcStat Parse(string text)
    {
        var close = text.LastIndexOf(')');
        if (close < 0 || close + 2 > text.Length)
            throw new FormatException($"not a /proc/<pid>/stat line: '{text}'");
        // fields[0] is field 3 (state): field n is fields[n - 3]; ppid is field 4, utime 14, stime 15, starttime 22.
        var fields = text[(close + 2)..].Split(' ');
        if (fields.Length < 20)
            throw new FormatException($"a /proc/<pid>/stat line with {fields.Length + 2} fields, 22 at least expected: '{text}'");
        return new ProcStat((int)Long(fields[1]), Long(fields[11]) + Long(fields[12]), Long(fields[19]));
    }

    private static long Long(string field) => long.Parse(field, NumberStyles.None, CultureInfo.InvariantCulture);
}
