namespace Synchro.Pipeline.LoadHarness.SteadyState;

/// <summary>p50, p99 and max of a sample, nearest-rank; null for an empty sample.</summary>
internal sealed record Percentiles(double P50, double P99, double Max, int Samples)
{
    public static Percentiles? Of(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        if (sorted.Length == 0)
            return null;
        return new(Rank(sorted, 0.50), Rank(sorted, 0.99), sorted[^1], sorted.Length);
    }

    private static double Rank(double[] sorted, double p) => sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Length) - 1, 0, sorted.Length - 1)];
}
