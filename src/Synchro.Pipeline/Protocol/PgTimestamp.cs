namespace Synchro.Pipeline.Protocol;

/// <summary>PostgreSQL timestamps on the wire: microseconds since 2000-01-01 00:00:00 UTC.</summary>
internal static class PgTimestamp
{
    private static readonly long s_epochTicks = new DateTime(2000, 1, 1, 0, 0, 0, DateTimeKind.Utc).Ticks;
    private static readonly long s_maxMicroseconds = (DateTime.MaxValue.Ticks - s_epochTicks) / TimeSpan.TicksPerMicrosecond;
    private static readonly long s_minMicroseconds = (DateTime.MinValue.Ticks - s_epochTicks) / TimeSpan.TicksPerMicrosecond;

    /// <summary>The UTC time, clamped to <see cref="DateTime"/>'s range (so ±infinity and garbage never throw).</summary>
    public static DateTime ToDateTime(long microseconds)
    {
        var clamped = Math.Clamp(microseconds, s_minMicroseconds, s_maxMicroseconds);
        return new DateTime(s_epochTicks + (clamped * TimeSpan.TicksPerMicrosecond), DateTimeKind.Utc);
    }
}
