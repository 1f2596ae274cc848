using System.Globalization;
using System.Text;
using Synchro.Pipeline.Protocol;

namespace Synchro.Pipeline.Replication;

/// <summary>
/// A timeline's ancestry, from the server's history file (<c>TIMELINE_HISTORY</c>): for each earlier timeline of its
/// history, the LSN at which the history left it. WAL of an ancestor up to that switch point is part of this timeline's
/// history; WAL that ancestor wrote past it (on the old primary, after the fork) is not.
/// </summary>
internal sealed class TimelineHistory
{
    private readonly (uint Timeline, Lsn SwitchPoint)[] _ancestors;

    private TimelineHistory(uint timeline, (uint, Lsn)[] ancestors)
    {
        Timeline = timeline;
        _ancestors = ancestors;
    }

    /// <summary>The timeline whose history this is.</summary>
    public uint Timeline { get; }

    /// <summary>The history of timeline 1, the first of every cluster: it has no ancestors (and the server no file).</summary>
    public static TimelineHistory Initial { get; } = new(1, []);

    /// <summary>
    /// Whether a position saved on <paramref name="timeline"/> at <paramref name="position"/> is part of this history:
    /// on this timeline itself, or on an ancestor at or before the point where the history left it.
    /// </summary>
    /// <param name="timeline">The timeline the position was saved on.</param>
    /// <param name="position">The position.</param>
    /// <param name="switchPoint">Where the history left <paramref name="timeline"/>; <see cref="Lsn.Invalid"/> when it is this timeline or not an ancestor.</param>
    public bool Contains(uint timeline, Lsn position, out Lsn switchPoint)
    {
        switchPoint = Lsn.Invalid;
        if (timeline == Timeline)
            return true;
        foreach (var (ancestor, end) in _ancestors)
        {
            if (ancestor != timeline)
                continue;
            switchPoint = end;
            // A commit that ends exactly at the switch point is the last record of the old timeline's part.
            return position <= end;
        }
        return false;
    }

    /// <summary>
    /// Parses a history file as the server writes it (<c>timeline.c</c>): one line per ancestor, <c>parent TLI</c>, a tab,
    /// the switch point as <c>X/X</c>, and a free-text reason; blank lines and lines starting with <c>#</c> are skipped.
    /// </summary>
    /// <exception cref="FormatException">A line is not of that form, or the timelines do not increase.</exception>
    public static TimelineHistory Parse(uint timeline, ReadOnlySpan<byte> content)
    {
        var text = Encoding.UTF8.GetString(content);
        var ancestors = new List<(uint, Lsn)>();
        foreach (var raw in text.Split('\n'))
        {
            var line = raw.AsSpan().TrimStart();
            if (line.IsEmpty || line[0] == '#')
                continue;
            var fields = line.ToString().Split((char[]?)null, 3, StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length < 2
                || !uint.TryParse(fields[0], NumberStyles.None, CultureInfo.InvariantCulture, out var parent)
                || !Lsn.TryParse(fields[1], CultureInfo.InvariantCulture, out var switchPoint))
            {
                throw new FormatException($"The history file of timeline {timeline} has a line that is not 'timeline<TAB>X/X<TAB>reason': '{raw.TrimEnd()}'.");
            }
            if ((ancestors.Count > 0 && parent <= ancestors[^1].Item1) || parent >= timeline)
                throw new FormatException($"The history file of timeline {timeline} lists timeline {parent} out of order.");
            ancestors.Add((parent, switchPoint));
        }
        return new TimelineHistory(timeline, [.. ancestors]);
    }
}
