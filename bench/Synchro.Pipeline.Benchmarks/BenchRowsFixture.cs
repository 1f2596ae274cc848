using System.Buffers;
using Synchro.Pipeline.Protocol;

namespace Synchro.Pipeline.Benchmarks;

/// <summary>One XLogData payload of the benchmark stream and its WAL position.</summary>
internal readonly record struct BenchFrame(byte[] Payload, Lsn Lsn)
{
    public byte Kind => Payload[0];

    public bool IsRow => Kind is (byte)'I' or (byte)'U' or (byte)'D';
}

/// <summary>
/// The captured benchmark stream (tests/Synchro.Pipeline.Tests/Fixtures/bench-rows.v1.bin): PostgreSQL 15,
/// pgoutput protocol 1, text mode; 1,000 inserts and 1,000 updates of a 10-column table, plus
/// Begin, Relation and Commit. Loaded once per process and split into frames in memory.
/// </summary>
internal sealed class BenchRowsFixture
{
    public const string FileName = "bench-rows.v1.bin";

    /// <summary>The same workload captured in binary tuple mode (<c>binary 'true'</c>).</summary>
    public const string BinaryFileName = "bench-rows-binary.v1.bin";

    /// <summary>Overrides the search: a full path to the fixture file.</summary>
    public const string PathVariable = "SYNCHRO_BENCH_ROWS";

    private const string SolutionFileName = "Synchro.Pipeline.sln";

    private static readonly Lazy<BenchRowsFixture> s_shared = new(() => Load(Locate(FileName)));

    private static readonly Lazy<BenchRowsFixture> s_binary = new(() => Load(Locate(BinaryFileName)));

    private BenchRowsFixture(string path, byte[] stream, BenchFrame[] frames)
    {
        Path = path;
        Stream = stream;
        Frames = frames;
        MessageCount = frames.Length;
        RowMessageCount = frames.Count(f => f.IsRow);
        PayloadBytes = frames.Sum(f => (long)f.Payload.Length);
    }

    public static BenchRowsFixture Shared => s_shared.Value;

    /// <summary>The binary tuple mode capture of the same workload (<see cref="BinaryFileName"/>).</summary>
    public static BenchRowsFixture Binary => s_binary.Value;

    public string Path { get; }

    /// <summary>The whole file: frames with their 20-byte headers, back to back.</summary>
    public byte[] Stream { get; }

    /// <summary>The payloads (one pgoutput message each), in stream order.</summary>
    public BenchFrame[] Frames { get; }

    public int MessageCount { get; }

    /// <summary>Insert, Update and Delete messages.</summary>
    public int RowMessageCount { get; }

    /// <summary>The pgoutput message bytes, without frame headers.</summary>
    public long PayloadBytes { get; }

    public double AveragePayloadBytes => (double)PayloadBytes / MessageCount;

    public override string ToString()
        => $"{System.IO.Path.GetFileName(Path)}: {MessageCount:N0} messages ({RowMessageCount:N0} row messages), {PayloadBytes:N0} payload bytes "
            + $"(avg {AveragePayloadBytes:F1} B/message), {Stream.Length:N0} stream bytes with frame headers; from {Path}";

    private static BenchRowsFixture Load(string path)
    {
        var stream = File.ReadAllBytes(path);
        var frames = new List<BenchFrame>();
        var buffer = new ReadOnlySequence<byte>(stream);
        using (var reader = new WalFrameReader())
        {
            while (reader.TryRead(ref buffer, out var frame))
            {
                if (frame.Payload.IsEmpty)
                    throw new InvalidDataException($"{path}: frame {frames.Count + 1} has an empty payload.");
                frames.Add(new BenchFrame(frame.Payload.ToArray(), frame.WalStart));
            }
        }
        if (!buffer.IsEmpty)
            throw new InvalidDataException($"{path}: {buffer.Length} trailing bytes are not a whole WalFrame.");
        if (frames.Count == 0)
            throw new InvalidDataException($"{path}: no frames.");
        return new BenchRowsFixture(path, stream, [.. frames]);
    }

    /// <summary>
    /// BenchmarkDotNet runs the benchmarks in a generated child project whose base directory is not
    /// this project's output, so look in several places: an explicit override, the repository (found by
    /// walking up to the solution file from the base and current directories), then a copied Fixtures folder.
    /// </summary>
    private static string Locate(string fileName)
    {
        var tried = new List<string>();
        string[] pathInRepository = ["tests", "Synchro.Pipeline.Tests", "Fixtures", fileName];

        var overridePath = fileName == FileName ? Environment.GetEnvironmentVariable(PathVariable) : null;
        if (!string.IsNullOrWhiteSpace(overridePath))
        {
            if (File.Exists(overridePath))
                return System.IO.Path.GetFullPath(overridePath);
            tried.Add($"{overridePath} (from {PathVariable})");
        }

        var starts = new[] { AppContext.BaseDirectory, Environment.CurrentDirectory, System.IO.Path.GetDirectoryName(typeof(BenchRowsFixture).Assembly.Location) }
            .Where(d => !string.IsNullOrEmpty(d))
            .Select(d => System.IO.Path.GetFullPath(d!))
            .Distinct(StringComparer.Ordinal)
            .ToArray();

        foreach (var start in starts)
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                if (!File.Exists(System.IO.Path.Combine(dir.FullName, SolutionFileName)))
                    continue;
                var candidate = System.IO.Path.Combine([dir.FullName, .. pathInRepository]);
                if (File.Exists(candidate))
                    return candidate;
                tried.Add(candidate);
                break;
            }
        }

        foreach (var start in starts)
        {
            // The csproj copies the tests' Fixtures next to the benchmark assembly.
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                var candidate = System.IO.Path.Combine(dir.FullName, "Fixtures", fileName);
                if (File.Exists(candidate))
                    return candidate;
                tried.Add(candidate);
            }
        }

        throw new FileNotFoundException(
            $"Benchmark fixture {fileName} not found. Looked for {SolutionFileName} above {string.Join(", ", starts)} "
            + $"and for Fixtures/{fileName}; tried:{Environment.NewLine}  {string.Join(Environment.NewLine + "  ", tried.Distinct())}{Environment.NewLine}"
            + $"Run from inside the repository, or set {PathVariable} to the file's full path.",
            fileName);
    }
}
