using System.Globalization;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;

namespace Synchro.Pipeline.Benchmarks;

/// <summary>Adds messages/s and payload MB/s, derived from the mean time per message.</summary>
public sealed class ThroughputConfig : ManualConfig
{
    public ThroughputConfig()
    {
        AddColumn(new ThroughputColumn(ThroughputColumn.Measure.Messages));
        AddColumn(new ThroughputColumn(ThroughputColumn.Measure.Megabytes));
    }
}

/// <summary>
/// Throughput from the mean time per operation, where one operation is one message
/// (<c>OperationsPerInvoke</c> = messages in the stream). MB/s counts pgoutput payload bytes
/// (1 MB = 10^6 bytes), without the 20-byte frame headers, at the stream's average message size.
/// </summary>
public sealed class ThroughputColumn : IColumn
{
    private readonly Measure _measure;

    public ThroughputColumn(Measure measure) => _measure = measure;

    public enum Measure
    {
        Messages,
        Megabytes,
    }

    public string Id => $"{nameof(ThroughputColumn)}.{_measure}";

    public string ColumnName => _measure == Measure.Messages ? "Msg/s" : "MB/s";

    public bool AlwaysShow => true;

    public ColumnCategory Category => ColumnCategory.Custom;

    public int PriorityInCategory => (int)_measure;

    public bool IsNumeric => true;

    public UnitType UnitType => UnitType.Dimensionless;

    public string Legend => _measure == Measure.Messages
        ? "Messages decoded per second (1 / Mean)"
        : "pgoutput payload megabytes (10^6 bytes, frame headers excluded) decoded per second";

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, summary.Style);

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
    {
        var nanosecondsPerMessage = summary[benchmarkCase]?.ResultStatistics?.Mean;
        if (nanosecondsPerMessage is not > 0)
            return "NA";
        var messagesPerSecond = 1e9 / nanosecondsPerMessage.Value;
        if (_measure == Measure.Messages)
            return messagesPerSecond.ToString("N0", CultureInfo.InvariantCulture);
        double averagePayload;
        try
        {
            averagePayload = BenchRowsFixture.Shared.AveragePayloadBytes;
        }
        catch (IOException)
        {
            return "NA";
        }
        return (messagesPerSecond * averagePayload / 1e6).ToString("N1", CultureInfo.InvariantCulture);
    }

    public bool IsAvailable(Summary summary) => true;

    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;

    public override string ToString() => ColumnName;
}
