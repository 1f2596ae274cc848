using System.Globalization;

namespace Synchro.Pipeline.LoadHarness.Reporting;

/// <summary>Round tick values for a chart axis (steps of 1, 2, 2.5 or 5 times a power of ten) and their labels.</summary>
internal static class AxisTicks
{
    private const int TargetIntervals = 5;

    /// <summary>
    /// Ascending ticks, at least two, the first at or below every finite value and the last at or above: the axis's
    /// range. Non-finite values are ignored; no finite value gives 0 to 1; a range that does not cross zero starts at 0.
    /// </summary>
    public static double[] For(IEnumerable<double> values)
    {
        var (min, max) = (double.PositiveInfinity, double.NegativeInfinity);
        foreach (var v in values)
        {
            if (!double.IsFinite(v))
                continue;
            min = Math.Min(min, v);
            max = Math.Max(max, v);
        }
        if (min > max)
            return [0, 1];
        if (min > 0)
            min = 0;
        if (max < 0)
            max = 0;
        if (min == max)
            max = min + 1;

        var step = NiceStep((max - min) / TargetIntervals);
        var first = Math.Floor(min / step);
        var last = Math.Ceiling(max / step);
        // Floating-point rounding must not leave a value past the last tick.
        if (first * step > min)
            first--;
        if (last * step < max)
            last++;
        var ticks = new double[(int)(last - first) + 1];
        for (var i = 0; i < ticks.Length; i++)
            ticks[i] = (first + i) * step;
        return ticks;
    }

    /// <summary><paramref name="value"/> with k/M/G suffixes and as many decimals as the tick step needs.</summary>
    public static string Label(double value, IReadOnlyList<double> ticks)
    {
        var step = ticks.Count > 1 ? Math.Abs(ticks[1] - ticks[0]) : 1;
        var magnitude = Math.Max(Math.Abs(ticks[0]), Math.Abs(ticks[^1]));
        var (scale, suffix) = magnitude switch
        {
            >= 1e9 => (1e9, "G"),
            >= 1e6 => (1e6, "M"),
            >= 1e4 => (1e3, "k"),
            _ => (1.0, ""),
        };
        var scaledStep = step / scale;
        var decimals = scaledStep >= 1 ? 0 : Math.Min(6, (int)Math.Ceiling(-Math.Log10(scaledStep) - 1e-9));
        // 2.5-sized steps need one decimal more than their power of ten.
        if (Math.Abs(scaledStep * Math.Pow(10, decimals) % 1) > 1e-6)
            decimals++;
        var scaled = value / scale;
        if (Math.Abs(scaled) < scaledStep * 1e-6)
            return "0";
        return scaled.ToString("F" + decimals.ToString(CultureInfo.InvariantCulture), CultureInfo.InvariantCulture) + suffix;
    }

    private static double NiceStep(double rough)
    {
        var power = Math.Pow(10, Math.Floor(Math.Log10(rough)));
        var fraction = rough / power;
        return power * fraction switch
        {
            <= 1 => 1,
            <= 2 => 2,
            <= 2.5 => 2.5,
            <= 5 => 5,
            _ => 10,
        };
    }
}
