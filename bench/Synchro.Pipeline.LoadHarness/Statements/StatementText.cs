using System.Text.RegularExpressions;

namespace Synchro.Pipeline.LoadHarness.Statements;

/// <summary>
/// Statement texts as <c>pg_stat_statements</c> stores them, made comparable and readable: one line, numbered names
/// folded into one (the cascade's <c>synchro_cascade_12</c> cursors), and the pgbench workload told apart.
/// </summary>
internal static partial class StatementText
{
    /// <summary>The length a statement is cut at in the report.</summary>
    public const int ShownLength = 120;

    /// <summary>Whitespace runs (newlines included) as one space; trimmed.</summary>
    public static string OneLine(string query) => Whitespace().Replace(query, " ").Trim();

    /// <summary>
    /// The key statements are summed under: one line, and every identifier ending in <c>_</c> and digits ending in
    /// <c>_N</c> instead (a numbered cursor is one statement per number before PostgreSQL normalises utility statements).
    /// Parameters (<c>$1</c>) and string literals are left alone.
    /// </summary>
    public static string Fold(string query)
        => NumberedName().Replace(OneLine(query), m => m.Groups["name"].Success ? m.Groups["name"].Value + "N" : m.Value);

    /// <summary>At most <see cref="ShownLength"/> characters, an ellipsis marking a cut.</summary>
    public static string Shown(string query) => query.Length <= ShownLength ? query : string.Concat(query.AsSpan(0, ShownLength - 1), "…");

    /// <summary>Each of <paramref name="queries"/> <see cref="Shown(string)"/>, except those whose cut would read the same as another's: whole.</summary>
    public static IReadOnlyList<string> Shown(IReadOnlyList<string> queries)
    {
        var cut = queries.Select(Shown).ToList();
        var ambiguous = cut.GroupBy(c => c, StringComparer.Ordinal).Where(g => g.Count() > 1).Select(g => g.Key).ToHashSet(StringComparer.Ordinal);
        return [.. cut.Select((c, i) => ambiguous.Contains(c) ? queries[i] : c)];
    }

    /// <summary>
    /// pgbench's writes to the bench tables are <see cref="StatementOrigin.Workload"/> (the pipeline only reads them);
    /// a bare <c>BEGIN</c> or <c>COMMIT</c>, which both send, <see cref="StatementOrigin.Shared"/> (the pipeline's <c>BEGIN</c>
    /// names an isolation level); the rest
    /// <see cref="StatementOrigin.Pipeline"/>.
    /// </summary>
    public static StatementOrigin Origin(string query)
    {
        var line = OneLine(query);
        if (BenchTableWrite().IsMatch(line))
            return StatementOrigin.Workload;
        return TransactionControl().IsMatch(line) ? StatementOrigin.Shared : StatementOrigin.Pipeline;
    }

    [GeneratedRegex(@"\s+")]
    private static partial Regex Whitespace();

    // A string literal matches as a whole first, so that a name inside one is not folded.
    [GeneratedRegex(@"'(?:[^']|'')*'|(?<![\w$])(?<name>[A-Za-z][A-Za-z0-9_]*_)\d+\b")]
    private static partial Regex NumberedName();

    [GeneratedRegex(@"^(INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+(""?public""?\.)?""?(orders|order_lines)""?[\s(]", RegexOptions.IgnoreCase)]
    private static partial Regex BenchTableWrite();

    [GeneratedRegex(@"^(BEGIN|COMMIT|END|ROLLBACK)\s*;?$", RegexOptions.IgnoreCase)]
    private static partial Regex TransactionControl();
}
