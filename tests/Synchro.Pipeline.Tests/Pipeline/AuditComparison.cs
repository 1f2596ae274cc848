using Npgsql;
using Synchro.Pipeline.Tests.Infrastructure;

namespace Synchro.Pipeline.Tests.Pipeline;

/// <summary>One row of a trigger-written audit trail: what a source change did to a record, as the server committed it.</summary>
/// <param name="Record">The record id, as text.</param>
/// <param name="Operation"><c>INSERT</c>, <c>UPDATE</c> or <c>DELETE</c> (TG_OP).</param>
/// <param name="Owner">The owner column's value of the row written (the old row for a DELETE).</param>
/// <param name="Deleted">Whether that row's soft-delete column is set.</param>
internal readonly record struct AuditedChange(string Record, string Operation, string Owner, bool Deleted);

/// <summary>
/// The exactly-once check shared by the audited workloads: the changelog and rule failures the reference's edge diff derives
/// from an audit trail, against those the pipeline wrote, per record and in order.
/// </summary>
internal static class AuditComparison
{
    /// <summary>
    /// The reference's edge diff replayed over <paramref name="changes"/> (per record in the order given; the owner bucket is
    /// <c>user:</c> and the owner). A change whose owner bucket is longer than the changelog takes is, where its rule is
    /// evaluated, a rule failure instead (<c>"op limit"</c>), and so is a change with a row in <paramref name="refusedBucket"/>
    /// (<c>"op refused"</c>); either leaves the record's buckets as they were.
    /// </summary>
    public static (Dictionary<string, List<string>> Changelog, Dictionary<string, List<string>> Failures) Expected(IEnumerable<AuditedChange> changes, string? refusedBucket)
    {
        var maxBucketBytes = new WalPipelineOptions().MaxBucketIdBytes;
        var result = new Dictionary<string, List<string>>();
        var failures = new Dictionary<string, List<string>>();
        var edges = new Dictionary<string, List<string>>();
        foreach (var change in changes)
        {
            var (record, op, owner, deleted) = (change.Record, change.Operation, "user:" + change.Owner, change.Deleted);
            var rows = result.TryGetValue(record, out var list) ? list : result[record] = [];
            var existing = edges.GetValueOrDefault(record) ?? [];
            var overlong = System.Text.Encoding.UTF8.GetByteCount(owner) > maxBucketBytes;
            var isDelete = op == "DELETE" || (op == "UPDATE" && deleted);
            var code = isDelete ? "3" : op == "INSERT" ? "1" : "2";
            List<(string Bucket, int Operation)> changeRows;
            List<string> next;
            string? failure = null;
            if (isDelete)
            {
                // The rule is evaluated only for a record in no bucket.
                changeRows = [.. (existing.Count > 0 ? existing : [owner]).Select(b => (b, 3))];
                next = [];
                if (existing.Count == 0 && overlong)
                    failure = "limit";
            }
            else
            {
                changeRows = [(owner, existing.Contains(owner) ? 2 : 1), .. existing.Where(b => b != owner).Select(b => (b, 3))];
                next = [owner];
                if (overlong)
                    failure = "limit";
            }
            if (failure is null && refusedBucket is { } refused && changeRows.Any(r => r.Bucket == refused))
                failure = "refused";
            if (failure is not null)
            {
                (failures.TryGetValue(record, out var failed) ? failed : failures[record] = []).Add($"{code} {failure}");
                continue;
            }
            rows.AddRange(changeRows.Select(r => $"{r.Bucket} {r.Operation}"));
            edges[record] = next;
        }
        return (result, failures);
    }

    /// <summary>The changelog's rows as <c>"bucket op"</c>, per record in <c>seq</c> order.</summary>
    public static async Task<Dictionary<string, List<string>>> ActualChangelogAsync(string changelog)
    {
        var result = new Dictionary<string, List<string>>();
        await using var connection = new NpgsqlConnection(changelog);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT record_id, bucket_id, operation FROM sync_changelog ORDER BY seq", connection);
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            var record = reader.GetString(0);
            (result.TryGetValue(record, out var list) ? list : result[record] = []).Add($"{reader.GetString(1)} {reader.GetInt16(2)}");
        }
        return result;
    }

    /// <summary>The rule failures as <c>"op limit"</c> or <c>"op refused"</c> (the error text otherwise), per record in id order.</summary>
    public static async Task<Dictionary<string, List<string>>> ActualRuleFailuresAsync(string changelog)
    {
        var result = new Dictionary<string, List<string>>();
        await using var connection = new NpgsqlConnection(changelog);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT record_id, operation, error_text FROM sync_rule_failures ORDER BY id", connection);
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            var record = reader.GetString(0);
            var error = reader.GetString(2);
            var kind = error.Contains("the changelog takes (MaxBucketIdBytes)", StringComparison.Ordinal) ? "limit"
                : error.StartsWith("the changelog refused the change (23514)", StringComparison.Ordinal) ? "refused"
                : error;
            (result.TryGetValue(record, out var list) ? list : result[record] = []).Add($"{reader.GetInt16(1)} {kind}");
        }
        return result;
    }

    /// <summary>Asserts that every record has the same rows, in the same order, in <paramref name="expected"/> and <paramref name="actual"/>; names the first few that do not.</summary>
    public static void AssertSame(string what, Dictionary<string, List<string>> expected, Dictionary<string, List<string>> actual)
    {
        var records = expected.Keys.Union(actual.Keys).ToList();
        var different = records
            .Select(record => (Record: record, Want: expected.GetValueOrDefault(record) ?? [], Got: actual.GetValueOrDefault(record) ?? []))
            .Where(r => !r.Want.SequenceEqual(r.Got))
            .ToList();
        Assert.True(different.Count == 0, $"{different.Count} of {records.Count} records differ from {what}; "
            + string.Join("; ", different.Take(5).Select(r => $"record {r.Record}: expected [{string.Join(", ", r.Want)}] but {what} has [{string.Join(", ", r.Got)}]")));
    }

    /// <summary>Waits for a row of record <paramref name="markerId"/> in the changelog; <paramref name="checkConsumer"/> throws when the pipeline died meanwhile.</summary>
    public static async Task WaitForMarkerAsync(string changelog, string markerId, Func<Task> checkConsumer, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        // A connection per poll: the changelog's server may restart meanwhile.
        while (!await Sql.ScalarAsync<bool>(changelog, "SELECT EXISTS (SELECT FROM sync_changelog WHERE record_id = @marker)", ("marker", markerId)))
        {
            await checkConsumer();
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"The pipeline did not catch up with the workload in {timeout}.");
            await Task.Delay(100);
        }
    }
}
