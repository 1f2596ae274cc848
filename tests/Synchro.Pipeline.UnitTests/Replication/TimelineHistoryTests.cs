using System.Text;
using Synchro.Pipeline.Protocol;
using Synchro.Pipeline.Replication;

namespace Synchro.Pipeline.Tests.Replication;

/// <summary>The history file of a promoted server, as <c>TIMELINE_HISTORY</c> returns it (captured from PostgreSQL 15).</summary>
public sealed class TimelineHistoryTests
{
    // A copy of a cluster started as a standby and promoted twice (timeline 3).
    private const string Promoted = "1\t0/1516D20\tno recovery target specified\n\n2\t0/3000060\tno recovery target specified\n";

    private static TimelineHistory Parse(uint timeline, string content) => TimelineHistory.Parse(timeline, Encoding.UTF8.GetBytes(content));

    [Theory]
    [InlineData(1u, "0/100", true)]
    [InlineData(1u, "0/1516D20", true)]
    [InlineData(1u, "0/1516D21", false)]
    [InlineData(2u, "0/2FFFFFF", true)]
    [InlineData(2u, "0/3000060", true)]
    [InlineData(2u, "5/0", false)]
    [InlineData(3u, "FF/0", true)]
    [InlineData(4u, "0/100", false)]
    public void A_position_is_on_the_history_up_to_where_it_left_its_timeline(uint timeline, string position, bool contained)
    {
        var history = Parse(3, Promoted);

        Assert.Equal(contained, history.Contains(timeline, Lsn.Parse(position), out _));
    }

    [Fact]
    public void Reports_the_switch_point_of_an_ancestor()
    {
        var history = Parse(3, Promoted);

        Assert.False(history.Contains(1, Lsn.Parse("0/2000000"), out var fork));
        Assert.Equal(Lsn.Parse("0/1516D20"), fork);
        Assert.True(history.Contains(3, Lsn.Parse("0/2000000"), out var none));
        Assert.Equal(Lsn.Invalid, none);
        Assert.False(history.Contains(4, Lsn.Parse("0/1"), out var unknown));
        Assert.Equal(Lsn.Invalid, unknown);
    }

    [Fact]
    public void Skips_comments_blank_lines_and_leading_space_and_takes_any_whitespace_between_fields()
    {
        var history = Parse(2, "# written by hand\n\n   1 0/3000000   after a restore\r\n");

        Assert.True(history.Contains(1, Lsn.Parse("0/3000000"), out _));
        Assert.False(history.Contains(1, Lsn.Parse("0/3000001"), out _));
    }

    [Fact]
    public void Timeline_one_has_no_ancestors()
    {
        Assert.True(TimelineHistory.Initial.Contains(1, Lsn.MaxValue, out _));
        Assert.False(TimelineHistory.Initial.Contains(2, Lsn.Parse("0/1"), out _));
    }

    [Theory]
    [InlineData("one\t0/1\treason\n")]
    [InlineData("1\n")]
    [InlineData("1\tnot-an-lsn\treason\n")]
    [InlineData("2\t0/2\tr\n1\t0/1\tr\n")]
    [InlineData("3\t0/2\tr\n")]
    public void Refuses_a_file_not_of_the_servers_form(string content)
        => Assert.Throws<FormatException>(() => Parse(3, content));
}
