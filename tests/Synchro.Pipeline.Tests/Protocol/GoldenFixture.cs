using System.Text.RegularExpressions;
using Synchro.Pipeline.Protocol;

namespace Synchro.Pipeline.Tests.Protocol;

/// <summary>
/// A checked-in golden fixture: <c>Fixtures/pgoutput/NAME.bin</c> (the captured frames) and
/// <c>NAME.txt</c> (the expected decoded dump; its first line names the pgoutput options).
/// </summary>
internal sealed partial record GoldenFixture(string Name, PgOutputOptions Options, byte[] Stream, string ExpectedDump)
{
    public const string Directory = "Fixtures/pgoutput";

    public override string ToString() => Name;

    public static IEnumerable<string> Names => System.IO.Directory.EnumerateFiles(Path.Combine(AppContext.BaseDirectory, Directory), "*.bin")
        .Select(Path.GetFileNameWithoutExtension).Order(StringComparer.Ordinal)!;

    public static GoldenFixture Load(string name)
    {
        var folder = Path.Combine(AppContext.BaseDirectory, Directory);
        var dump = File.ReadAllText(Path.Combine(folder, name + ".txt")).ReplaceLineEndings("\n");
        return new GoldenFixture(name, ParseOptions(dump), File.ReadAllBytes(Path.Combine(folder, name + ".bin")), dump);
    }

    /// <summary>The major the fixtures are captured on; a newer one that sends a scenario differently has its own <c>NAME.pgN.txt</c>.</summary>
    public const int CapturedOnVersion = 15;

    /// <summary>The file of what major <paramref name="serverVersion"/> sends for <paramref name="name"/> where that differs from the fixture.</summary>
    public static string VersionDumpFile(string folder, string name, int serverVersion) =>
        Path.Combine(folder, $"{name}.pg{serverVersion.ToString(System.Globalization.CultureInfo.InvariantCulture)}.txt");

    /// <summary>
    /// The dump a live capture on <paramref name="serverVersion"/> must decode to: <c>NAME.pgN.txt</c> where that major sends
    /// the scenario differently (18 no longer streams a transaction that has aborted before it is decoded), else the fixture's.
    /// </summary>
    public static string ExpectedLiveDump(string name, int serverVersion)
    {
        var path = VersionDumpFile(Path.Combine(AppContext.BaseDirectory, Directory), name, serverVersion);
        return File.Exists(path) ? File.ReadAllText(path).ReplaceLineEndings("\n") : Load(name).ExpectedDump;
    }

    /// <summary>The source folder of the fixtures, for regenerating them.</summary>
    public static string SourceDirectory()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Synchro.Pipeline.sln")))
                return Path.Combine(dir.FullName, "tests", "Synchro.Pipeline.Tests", Directory);
        }
        throw new InvalidOperationException("Synchro.Pipeline.sln not found above the test output directory.");
    }

    private static PgOutputOptions ParseOptions(string dump)
    {
        var header = dump[..dump.IndexOf('\n', StringComparison.Ordinal)];
        var values = OptionPattern().Matches(header).ToDictionary(m => m.Groups[1].Value, m => m.Groups[2].Value);
        return new PgOutputOptions(
            int.Parse(values["proto_version"], System.Globalization.CultureInfo.InvariantCulture),
            Enum.Parse<PgOutputStreaming>(values["streaming"], ignoreCase: true),
            twoPhase: values["two_phase"] == "on",
            binary: values["binary"] == "on",
            messages: values["messages"] == "on");
    }

    /// <summary>
    /// Replaces what differs between captures of the same workload by placeholders: LSNs entirely;
    /// transaction ids, OIDs of user objects and times numbered in order of first appearance, keeping
    /// which values are equal.
    /// </summary>
    public static string Normalize(string dump)
    {
        var seen = new Dictionary<(string, string), int>();
        var perKind = new Dictionary<string, int>();
        return VolatilePattern().Replace(WithoutStreamBoundaries(dump), m =>
        {
            var kind = m.Groups[1].Value;
            var value = m.Groups[2].Value;
            // Built-in type OIDs are fixed; only user-defined types (>= FirstNormalObjectId) vary.
            if (kind == "typeoid" && uint.Parse(value, System.Globalization.CultureInfo.InvariantCulture) < 16384)
                return m.Value;
            // Other databases on the server write WAL between captures, so which LSNs coincide varies: LSNs lose their identity.
            if (kind == "lsn")
                return "lsn=#";
            if (!seen.TryGetValue((kind, value), out var number))
            {
                number = perKind[kind] = perKind.GetValueOrDefault(kind) + 1;
                seen[(kind, value)] = number;
            }
            return $"{kind}=#{number}";
        });
    }

    /// <summary>
    /// Where the server cuts a streamed transaction into blocks depends on its decoding memory at
    /// that moment (other databases' WAL included), so block boundaries — Stream Stop, a Stream Start
    /// that continues a transaction, and the Relation messages re-sent in a new block — are left out.
    /// </summary>
    private static string WithoutStreamBoundaries(string dump)
    {
        var relations = new HashSet<string>(StringComparer.Ordinal);
        var lines = dump.Split('\n').Where(line =>
        {
            if (line.StartsWith("StreamStop ", StringComparison.Ordinal) || (line.StartsWith("StreamStart ", StringComparison.Ordinal) && line.EndsWith("first=False", StringComparison.Ordinal)))
                return false;
            if (!line.StartsWith("Relation ", StringComparison.Ordinal))
                return true;
            var description = line[line.IndexOf(" oid=", StringComparison.Ordinal)..];
            return relations.Add(description[description.IndexOf(' ', 1)..]);
        });
        return string.Join('\n', lines);
    }

    [GeneratedRegex(@"(?<=^|[\s=_\[:])(lsn|xid|oid|typeoid|time)=([0-9A-F]+/[0-9A-F]+|\d{4}-\d\d-\d\dT[\d:.]+Z|\d+)", RegexOptions.Multiline)]
    private static partial Regex VolatilePattern();

    [GeneratedRegex(@"(\w+)=(\S+)")]
    private static partial Regex OptionPattern();
}
