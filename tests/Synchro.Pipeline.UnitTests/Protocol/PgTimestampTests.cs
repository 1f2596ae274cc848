using Synchro.Pipeline.Protocol;

namespace Synchro.Pipeline.Tests.Protocol;

public sealed class PgTimestampTests
{
    [Fact]
    public void Counts_microseconds_from_the_postgresql_epoch()
    {
        Assert.Equal(new DateTime(2000, 1, 1, 0, 0, 0, DateTimeKind.Utc), PgTimestamp.ToDateTime(0));
        Assert.Equal(new DateTime(2000, 1, 1, 0, 0, 1, DateTimeKind.Utc).AddTicks(10), PgTimestamp.ToDateTime(1_000_001));
        Assert.Equal(new DateTime(1999, 12, 31, 23, 59, 59, DateTimeKind.Utc), PgTimestamp.ToDateTime(-1_000_000));
    }

    [Fact]
    public void Clamps_infinity_and_garbage_instead_of_throwing()
    {
        Assert.Equal(DateTime.MaxValue.Ticks / 10, PgTimestamp.ToDateTime(long.MaxValue).Ticks / 10);
        Assert.Equal(DateTime.MinValue.Ticks / 10, PgTimestamp.ToDateTime(long.MinValue).Ticks / 10);
    }
}
