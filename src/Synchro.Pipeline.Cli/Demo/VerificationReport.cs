using System.Globalization;
using Synchro.Pipeline.Protocol;

namespace Synchro.Pipeline.Cli.Demo;

/// <summary>What <see cref="ChangelogVerifier"/> found: counts per table and operation, and every discrepancy.</summary>
internal sealed class VerificationReport
{
    public const string PassedLine = "verification passed";
    public const string FailedLine = "verification FAILED";

    // Enough to see the pattern; the count says how many there are.
    private const int MaxDiscrepanciesShown = 20;

    private readonly List<string> _discrepancies = [];
    private readonly SortedDictionary<string, TableCounts> _tables = new(Comparer<string>.Create(CompareTables));

    public IReadOnlyList<string> Discrepancies => _discrepancies;

    public bool Passed => _discrepancies.Count == 0;

    public long AuditedChanges { get; set; }

    public long ChangelogRows { get; set; }

    public long SourceRecords { get; set; }

    public Lsn? PersistedPosition { get; set; }

    public IReadOnlyDictionary<string, TableCounts> Tables => _tables;

    public void Add(string discrepancy) => _discrepancies.Add(discrepancy);

    public TableCounts Counts(string table) => _tables.TryGetValue(table, out var counts) ? counts : _tables[table] = new TableCounts();

    public void Write(TextWriter output)
    {
        output.WriteLine("changelog rows per table and operation (expected from the audit trail / written by the pipeline):");
        output.WriteLine($"  {"table",-12} {"insert",21} {"update",21} {"delete",21}");
        foreach (var (table, counts) in _tables)
        {
            output.Write($"  {table,-12}");
            for (var i = 0; i < 3; i++)
            {
                var cell = string.Create(CultureInfo.InvariantCulture, $"{counts.Expected[i]:N0} / {counts.Written[i]:N0}");
                output.Write($" {cell,21}");
            }

            output.WriteLine(counts.Expected.SequenceEqual(counts.Written) ? "" : "  <- differs");
        }

        if (Passed)
        {
            output.WriteLine(string.Create(
                CultureInfo.InvariantCulture,
                $"{PassedLine}: {ChangelogRows:N0} changelog rows match {AuditedChanges:N0} audited source changes record by record; each of the {SourceRecords:N0} source records is in its current bucket only, deleted there if soft-deleted"));
            return;
        }

        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{FailedLine}: {_discrepancies.Count:N0} discrepancies"));
        foreach (var discrepancy in _discrepancies.Take(MaxDiscrepanciesShown))
            output.WriteLine("  - " + discrepancy);
        if (_discrepancies.Count > MaxDiscrepanciesShown)
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  ... and {_discrepancies.Count - MaxDiscrepanciesShown:N0} more"));
    }

    /// <summary>The demo's tables in schema order, anything else after them by name.</summary>
    private static int CompareTables(string? left, string? right)
    {
        var l = Rank(left);
        var r = Rank(right);
        return l != r ? l.CompareTo(r) : string.CompareOrdinal(left, right);

        static int Rank(string? table)
        {
            var index = table is null ? -1 : DemoDatabase.Tables.ToList().IndexOf(table);
            return index < 0 ? int.MaxValue : index;
        }
    }

    /// <summary>Changelog rows of one table by operation (index 0 insert, 1 update, 2 delete).</summary>
    internal sealed class TableCounts
    {
        public long[] Expected { get; } = new long[3];

        public long[] Written { get; } = new long[3];
    }
}
