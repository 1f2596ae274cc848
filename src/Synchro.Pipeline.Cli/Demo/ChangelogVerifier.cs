using Npgsql;
using Synchro.Pipeline.Protocol;

namespace Synchro.Pipeline.Cli.Demo;

/// <summary>
/// Checks the changelog the pipeline wrote for the demo database against the source, three ways:
/// record by record against the changelog the reference's edge diff derives from the audit trail
/// (exact, in order); against the source tables' current rows (each record live in its current
/// bucket, deleted everywhere else); and for rule failures and the persisted position.
/// </summary>
/// <remarks>
/// It cannot pass vacuously: a table without audited changes, an empty audit trail or an audit
/// trail without changelog rows is a discrepancy.
/// </remarks>
internal static class ChangelogVerifier
{
    // Records only: a key never contains the separator (table names are identifiers, ids are text from the server).
    private const char KeySeparator = '\u001f';

    // Rows shown per side of a record's mismatch: the first difference is what matters.
    private const int MaxRowsShown = 4;

    private const string AuditSql = $"SELECT table_name, record_id, op, bucket, deleted FROM {DemoDatabase.AuditTable} ORDER BY n";

    private const string ChangelogSql = "SELECT table_name, record_id, bucket_id, operation FROM sync_changelog ORDER BY seq";

    // Each record's bucket as the source holds it now, by the registry's rules.
    private const string SourceSql = """
        SELECT 'users', id::text, 'user:' || id, false FROM users
        UNION ALL SELECT 'orders', id::text, 'user:' || user_id, deleted_at IS NOT NULL FROM orders
        UNION ALL SELECT 'order_lines', l.id::text, 'user:' || o.user_id, false FROM order_lines l JOIN orders o ON o.id = l.order_id
        UNION ALL SELECT 'categories', id::text, 'global', false FROM categories
        """;

    private const string RuleFailuresSql = "SELECT pg_catalog.count(*) FROM sync_rule_failures";

    private const string PositionSql = "SELECT confirmed_lsn FROM sync_wal_position WHERE slot_name = $1";

    /// <summary>Verifies the changelog; <paramref name="workloadEnd"/>, when given, is where the persisted position of <paramref name="slotName"/> must be at or past.</summary>
    public static async Task<VerificationReport> VerifyAsync(NpgsqlDataSource database, string slotName, Lsn? workloadEnd, CancellationToken ct)
    {
        var report = new VerificationReport();
        var expected = await ExpectedAsync(database, report, ct).ConfigureAwait(false);
        var actual = await ActualAsync(database, report, ct).ConfigureAwait(false);

        CompareRecords(expected, actual, report);
        await CompareWithSourceAsync(database, actual, report, ct).ConfigureAwait(false);
        CheckNotVacuous(report);

        await using (var command = database.CreateCommand(RuleFailuresSql))
        {
            var failures = (long)(await command.ExecuteScalarAsync(ct).ConfigureAwait(false))!;
            if (failures > 0)
                report.Add($"sync_rule_failures has {failures} row(s): changes whose bucket rule failed are not in the changelog");
        }

        if (workloadEnd is { } end)
        {
            await using var command = database.CreateCommand(PositionSql);
            command.Parameters.AddWithValue(slotName);
            var stored = await command.ExecuteScalarAsync(ct).ConfigureAwait(false) as long?;
            var position = stored is { } value ? new Lsn(unchecked((ulong)value)) : Lsn.Invalid;
            report.PersistedPosition = position;
            if (position < end)
                report.Add($"the persisted position {position} is before the end of the workload {end}");
        }

        return report;
    }

    /// <summary>The reference's edge diff replayed over the audit trail: per record, the changelog rows in order.</summary>
    private static async Task<Dictionary<string, List<(string Bucket, ChangeOperation Operation)>>> ExpectedAsync(
        NpgsqlDataSource database, VerificationReport report, CancellationToken ct)
    {
        var rows = new Dictionary<string, List<(string, ChangeOperation)>>(StringComparer.Ordinal);
        var edges = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        await using var command = database.CreateCommand(AuditSql);
        await using var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
        while (await reader.ReadAsync(ct).ConfigureAwait(false))
        {
            var table = reader.GetString(0);
            var key = Key(table, reader.GetString(1));
            var op = reader.GetString(2);
            string? bucket = reader.IsDBNull(3) ? null : reader.GetString(3);
            var deleted = reader.GetBoolean(4);
            report.AuditedChanges++;

            var list = rows.TryGetValue(key, out var found) ? found : rows[key] = [];
            var existing = edges.TryGetValue(key, out var current) ? current : [];
            var desired = bucket is null ? [] : new List<string> { bucket };
            List<(string Bucket, ChangeOperation Operation)> emitted = [];
            if (op == "DELETE" || (op == "UPDATE" && deleted))
            {
                // A delete leaves every bucket the record is in; with none, the rule's buckets.
                emitted.AddRange((existing.Count > 0 ? existing : desired).Select(b => (b, ChangeOperation.Delete)));
                edges[key] = [];
            }
            else
            {
                emitted.AddRange(desired.Select(b => (b, existing.Contains(b) ? ChangeOperation.Update : ChangeOperation.Insert)));
                emitted.AddRange(existing.Where(b => !desired.Contains(b)).Select(b => (b, ChangeOperation.Delete)));
                edges[key] = desired;
            }

            list.AddRange(emitted);
            foreach (var (_, operation) in emitted)
                report.Counts(table).Expected[(int)operation - 1]++;
        }

        return rows;
    }

    private static async Task<Dictionary<string, List<(string Bucket, ChangeOperation Operation)>>> ActualAsync(
        NpgsqlDataSource database, VerificationReport report, CancellationToken ct)
    {
        var rows = new Dictionary<string, List<(string, ChangeOperation)>>(StringComparer.Ordinal);
        await using var command = database.CreateCommand(ChangelogSql);
        await using var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
        while (await reader.ReadAsync(ct).ConfigureAwait(false))
        {
            var table = reader.GetString(0);
            var key = Key(table, reader.GetString(1));
            var operation = (ChangeOperation)reader.GetInt16(3);
            (rows.TryGetValue(key, out var list) ? list : rows[key] = []).Add((reader.GetString(2), operation));
            report.ChangelogRows++;
            if (operation is >= ChangeOperation.Insert and <= ChangeOperation.Delete)
                report.Counts(table).Written[(int)operation - 1]++;
            else
                report.Add($"{Describe(key)}: operation code {(short)operation} is not insert (1), update (2) or delete (3)");
        }

        return rows;
    }

    private static void CompareRecords(
        Dictionary<string, List<(string Bucket, ChangeOperation Operation)>> expected,
        Dictionary<string, List<(string Bucket, ChangeOperation Operation)>> actual,
        VerificationReport report)
    {
        foreach (var key in expected.Keys.Union(actual.Keys).Order(StringComparer.Ordinal))
        {
            var want = expected.GetValueOrDefault(key) ?? [];
            var got = actual.GetValueOrDefault(key) ?? [];
            if (want.SequenceEqual(got))
                continue;

            var common = want.Zip(got).TakeWhile(pair => pair.First == pair.Second).Count();
            report.Add($"{Describe(key)}: from change {common + 1} on, expected [{Format(want.Skip(common))}] but the changelog has [{Format(got.Skip(common))}]");
        }
    }

    /// <summary>Each record the source holds is live in its current bucket (deleted there when soft-deleted) and deleted in any other; a record gone from the source is deleted everywhere.</summary>
    private static async Task CompareWithSourceAsync(
        NpgsqlDataSource database,
        Dictionary<string, List<(string Bucket, ChangeOperation Operation)>> actual,
        VerificationReport report,
        CancellationToken ct)
    {
        var present = new HashSet<string>(StringComparer.Ordinal);
        await using (var command = database.CreateCommand(SourceSql))
        await using (var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false))
        {
            while (await reader.ReadAsync(ct).ConfigureAwait(false))
            {
                var key = Key(reader.GetString(0), reader.GetString(1));
                var bucket = reader.GetString(2);
                var softDeleted = reader.GetBoolean(3);
                present.Add(key);
                report.SourceRecords++;

                var latest = Latest(actual.GetValueOrDefault(key));
                if (!latest.TryGetValue(bucket, out var operation))
                    report.Add($"{Describe(key)}: no changelog row in its bucket {bucket}");
                else if (softDeleted && operation != ChangeOperation.Delete)
                    report.Add($"{Describe(key)} is soft-deleted but its latest row in {bucket} is {Name(operation)}");
                else if (!softDeleted && operation == ChangeOperation.Delete)
                    report.Add($"{Describe(key)} is live but its latest row in {bucket} is a delete");

                foreach (var (other, last) in latest)
                {
                    if (other != bucket && last != ChangeOperation.Delete)
                        report.Add($"{Describe(key)} belongs to {bucket} but is still live in {other} ({Name(last)})");
                }
            }
        }

        foreach (var (key, rows) in actual)
        {
            if (present.Contains(key))
                continue;
            foreach (var (bucket, last) in Latest(rows))
            {
                if (last != ChangeOperation.Delete)
                    report.Add($"{Describe(key)} is gone from the source but still live in {bucket} ({Name(last)})");
            }
        }
    }

    private static void CheckNotVacuous(VerificationReport report)
    {
        if (report.AuditedChanges == 0)
            report.Add("the audit trail is empty: nothing was changed, so nothing was verified");
        else if (report.ChangelogRows == 0)
            report.Add("the changelog is empty");
        foreach (var table in DemoDatabase.Tables)
        {
            if (report.Counts(table).Expected.Sum() == 0)
                report.Add($"no change of {table} was audited: the check of that table would be vacuous");
        }
    }

    private static Dictionary<string, ChangeOperation> Latest(List<(string Bucket, ChangeOperation Operation)>? rows)
    {
        var latest = new Dictionary<string, ChangeOperation>(StringComparer.Ordinal);
        foreach (var (bucket, operation) in rows ?? [])
            latest[bucket] = operation;
        return latest;
    }

    private static string Key(string table, string recordId) => table + KeySeparator + recordId;

    private static string Describe(string key) => key.Replace(KeySeparator, ' ');

    private static string Format(IEnumerable<(string Bucket, ChangeOperation Operation)> rows)
    {
        var list = rows.ToList();
        var shown = string.Join(", ", list.Take(MaxRowsShown).Select(r => $"{r.Bucket} {Name(r.Operation)}"));
        return list.Count > MaxRowsShown ? $"{shown}, ... {list.Count - MaxRowsShown} more" : shown;
    }

    private static string Name(ChangeOperation operation) => operation switch
    {
        ChangeOperation.Insert => "insert",
        ChangeOperation.Update => "update",
        ChangeOperation.Delete => "delete",
        _ => $"operation {(short)operation}",
    };
}
