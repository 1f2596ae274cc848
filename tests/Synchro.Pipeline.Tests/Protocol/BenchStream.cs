namespace Synchro.Pipeline.Tests.Protocol;

/// <summary>The captured benchmark stream (<see cref="GoldenScenarios.BenchRows"/>): 1,000 inserts and 1,000 updates of 10-column rows.</summary>
internal static class BenchStream
{
    public const string FileName = "bench-rows.v1.bin";

    /// <summary>The same workload captured in binary tuple mode.</summary>
    public const string BinaryFileName = "bench-rows-binary.v1.bin";

    public static byte[] Load() => File.ReadAllBytes(Path.Combine(AppContext.BaseDirectory, "Fixtures", FileName));

    public static byte[] LoadBinary() => File.ReadAllBytes(Path.Combine(AppContext.BaseDirectory, "Fixtures", BinaryFileName));
}
