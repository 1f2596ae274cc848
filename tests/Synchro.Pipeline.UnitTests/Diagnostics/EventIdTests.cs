using System.Reflection;
using System.Text.RegularExpressions;
using Synchro.Pipeline.Cli.Logging;
using Synchro.Pipeline.Diagnostics;

namespace Synchro.Pipeline.Tests.Diagnostics;

/// <summary>
/// Event ids live in one list per assembly (<see cref="EventIds"/>, <see cref="CliEventIds"/>): each id means one thing,
/// every logged event takes its id from a list, and every id the docs tell operators about exists.
/// </summary>
public sealed partial class EventIdTests
{
    [Fact]
    public void No_id_is_used_twice_in_the_library_or_the_CLI()
    {
        var ids = Constants(typeof(EventIds)).Concat(Constants(typeof(CliEventIds))).ToList();

        var duplicates = ids.GroupBy(c => c.Id).Where(g => g.Count() > 1).Select(g => $"{g.Key}: {string.Join(", ", g.Select(c => c.Name))}");

        Assert.Empty(duplicates);
        Assert.True(ids.Count > 20, $"only {ids.Count} event ids found");
        Assert.Equal(1010, EventIds.SlotHealthWarning);
        Assert.Equal(1012, EventIds.TwoPhaseEnabledOnSlot);
    }

    [Fact]
    public void Every_EventId_in_the_source_names_a_constant_of_the_lists()
    {
        var names = Constants(typeof(EventIds)).Select(c => $"{nameof(EventIds)}.{c.Name}")
            .Concat(Constants(typeof(CliEventIds)).Select(c => $"{nameof(CliEventIds)}.{c.Name}"))
            .ToHashSet(StringComparer.Ordinal);
        var source = Path.Combine(RepositoryRoot(), "src");
        var uses = 0;
        var offenders = new List<string>();

        foreach (var file in Directory.EnumerateFiles(source, "*.cs", SearchOption.AllDirectories).Where(IsSource))
        {
            var lines = File.ReadAllLines(file);
            for (var i = 0; i < lines.Length; i++)
            {
                foreach (Match use in EventIdAssignment().Matches(lines[i]))
                {
                    uses++;
                    var value = use.Groups["value"].Value.Trim();
                    // A partly qualified name (Diagnostics.EventIds.X) is the same constant.
                    var qualified = ConstantReference().Match(value);
                    if (!qualified.Success || !names.Contains(qualified.Groups["name"].Value))
                        offenders.Add($"{Path.GetRelativePath(source, file)}:{i + 1}: EventId = {value}");
                }
                if (LiteralEventId().IsMatch(lines[i]))
                    offenders.Add($"{Path.GetRelativePath(source, file)}:{i + 1}: {lines[i].Trim()}");
            }
        }

        Assert.True(offenders.Count == 0, "Event ids must be constants of EventIds (library) or CliEventIds (CLI):" + Environment.NewLine + string.Join(Environment.NewLine, offenders));
        Assert.True(uses > 20, $"only {uses} EventId assignments found under {source}");
    }

    [Fact]
    public void Every_event_id_the_README_and_docs_name_exists()
    {
        var root = RepositoryRoot();
        var documents = new List<string> { Path.Combine(root, "README.md") };
        var docs = Path.Combine(root, "docs");
        if (Directory.Exists(docs))
            documents.AddRange(Directory.EnumerateFiles(docs, "*.md", SearchOption.AllDirectories).Order(StringComparer.Ordinal));

        var named = documents.SelectMany(d => NamedIds(File.ReadAllText(d)).Select(n => (Document: Path.GetRelativePath(root, d), n.Id, n.Line))).ToList();
        var unknown = named.Where(n => !IsDefined(n.Id)).Select(n => $"{n.Document}:{n.Line}: event {n.Id}");

        Assert.True(unknown.Count() == 0, "The docs name event ids that neither EventIds nor CliEventIds define:" + Environment.NewLine + string.Join(Environment.NewLine, unknown));
        Assert.Contains(named, n => n.Id == EventIds.SlotHealthWarning);
    }

    [Fact]
    public void The_docs_parser_reads_table_rows_and_prose_and_reports_unknown_ids()
    {
        const string sample = """
            # Operations

            | id | level | event |
            |---:|---|---|
            | 1010 | Warning | the slot nears invalidation |
            |1011|Information| out of danger |
            | 9999 | Warning | an event that does not exist |
            | 3 | exit code, not an event |

            Alert on event 1005; a slow batch is Event 3002, and events 4001, 4002 and 4003 are the committer's.
            See events 1201 or 8888. The year 2024 and port 5432 are not events.
            """;

        var named = NamedIds(sample);

        Assert.Equal([(1010, 5), (1011, 6), (9999, 7), (1005, 10), (3002, 10), (4001, 10), (4002, 10), (4003, 10), (1201, 11), (8888, 11)], named);
        Assert.Equal([9999, 8888], named.Select(n => n.Id).Where(id => !IsDefined(id)));
        Assert.Empty(NamedIds("No ids here: | a | b |, eventually 1234, prevent 1005."));
    }

    /// <summary>The event ids a Markdown document names: table rows that start <c>| 1234 |</c>, and "event 1234" or "events 1234, 1235 and 1236" in prose.</summary>
    internal static List<(int Id, int Line)> NamedIds(string markdown)
    {
        var named = new List<(int Id, int Line)>();
        var lines = markdown.ReplaceLineEndings("\n").Split('\n');
        for (var i = 0; i < lines.Length; i++)
        {
            if (TableRow().Match(lines[i]) is { Success: true } row)
                named.Add((int.Parse(row.Groups["id"].Value, System.Globalization.CultureInfo.InvariantCulture), i + 1));
            foreach (Match mention in ProseMention().Matches(lines[i]))
            {
                foreach (Capture id in mention.Groups["id"].Captures)
                    named.Add((int.Parse(id.Value, System.Globalization.CultureInfo.InvariantCulture), i + 1));
            }
        }
        return named;
    }

    private static bool IsDefined(int id) => Constants(typeof(EventIds)).Concat(Constants(typeof(CliEventIds))).Any(c => c.Id == id);

    private static IEnumerable<(string Name, int Id)> Constants(Type list) => list
        .GetFields(BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static)
        .Where(f => f is { IsLiteral: true, IsInitOnly: false } && f.FieldType == typeof(int))
        .Select(f => (f.Name, (int)f.GetRawConstantValue()!));

    private static bool IsSource(string file)
    {
        var separator = Path.DirectorySeparatorChar;
        return !file.Contains($"{separator}obj{separator}", StringComparison.Ordinal) && !file.Contains($"{separator}bin{separator}", StringComparison.Ordinal);
    }

    internal static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Synchro.Pipeline.sln")))
                return dir.FullName;
        }
        throw new InvalidOperationException("Synchro.Pipeline.sln not found above the test output directory.");
    }

    [GeneratedRegex(@"\bEventId\s*=(?!=)\s*(?<value>[^,)\]]+)")]
    private static partial Regex EventIdAssignment();

    [GeneratedRegex(@"^(?:[A-Za-z_]\w*\.)*(?<name>(?:EventIds|CliEventIds)\.[A-Za-z_]\w*)$")]
    private static partial Regex ConstantReference();

    [GeneratedRegex(@"\bnew\s+(?:Microsoft\.Extensions\.Logging\.)?EventId\s*\(\s*-?\d")]
    private static partial Regex LiteralEventId();

    [GeneratedRegex(@"^\s*\|\s*(?<id>\d{4})\s*\|")]
    private static partial Regex TableRow();

    [GeneratedRegex(@"\b[Ee]vents?\s+(?<id>\d{4})\b(?:\s*(?:,|,?\s*and|,?\s*or)\s*(?<id>\d{4})\b)*")]
    private static partial Regex ProseMention();
}
