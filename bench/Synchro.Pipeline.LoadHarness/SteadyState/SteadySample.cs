namespace Synchro.Pipeline.LoadHarness.SteadyState;

/// <summary>
/// The pipeline's status at one instant of the steady state: seconds since pgbench started, its replication lag
/// (null before its first commit, when it is measured against LSN 0) and the changes it had committed.
/// </summary>
internal sealed record SteadySample(double Seconds, long? LagBytes, double? LagSeconds, long ChangesCommitted);

/// <summary>One point of the latency distribution: <see cref="Fraction"/> of the source transactions reached the changelog within <see cref="Milliseconds"/>.</summary>
internal sealed record LatencyQuantile(double Fraction, double Milliseconds)
{
    // Enough points for a smooth CDF at any sample size, few enough for the JSON report.
    private const int Points = 200;

    /// <summary>The empirical CDF of <paramref name="milliseconds"/> at <see cref="Points"/> evenly spaced fractions plus the minimum and maximum; empty for no values.</summary>
    public static IReadOnlyList<LatencyQuantile> Cdf(IEnumerable<double> milliseconds)
    {
        var sorted = milliseconds.Where(double.IsFinite).Order().ToArray();
        if (sorted.Length == 0)
            return [];
        var cdf = new List<LatencyQuantile> { new(0, sorted[0]) };
        for (var i = 1; i <= Points; i++)
        {
            var fraction = (double)i / Points;
            cdf.Add(new(fraction, sorted[Math.Clamp((int)Math.Ceiling(fraction * sorted.Length) - 1, 0, sorted.Length - 1)]));
        }
        return cdf;
    }
}
