using Npgsql;
using NpgsqlTypes;

namespace Synchro.Pipeline.Tests.Compaction;

/// <summary>
/// Writes changelog rows and edges as the pipeline's writer would, one transaction per call, from a seeded random workload:
/// inserts, updates, deletes and moves of records across buckets (the edge diff of docs/buckets.md), so compaction and
/// reading can be checked against what the log said without a replication stream.
/// </summary>
internal sealed class SimulatedWriter(string connectionString, Random random, int records, int buckets)
{
    private static readonly string[] s_tables = ["public.orders", "public.lines"];

    // The edges: each live record's buckets.
    private readonly Dictionary<(string Table, string Record), HashSet<string>> _edges = [];

    /// <summary>The live records of every bucket, from the edges.</summary>
    public Dictionary<string, HashSet<(string Table, string Record)>> Members()
    {
        var members = new Dictionary<string, HashSet<(string, string)>>(StringComparer.Ordinal);
        foreach (var (key, set) in _edges)
        {
            foreach (var bucket in set)
            {
                if (!members.TryGetValue(bucket, out var m))
                    members[bucket] = m = [];
                m.Add(key);
            }
        }
        return members;
    }

    public IReadOnlyList<string> AllBuckets { get; } = [.. Enumerable.Range(0, buckets).Select(b => $"user:{b}")];

    /// <summary>Applies <paramref name="changes"/> random changes in one transaction.</summary>
    public async Task WriteAsync(int changes)
    {
        var (bucketIds, tables, recordIds, operations) = (new List<string>(), new List<string>(), new List<string>(), new List<short>());
        // The edges of every record the transaction touches as they were before it: the net change is what is written.
        var before = new Dictionary<(string Table, string Record), HashSet<string>>();
        for (var i = 0; i < changes; i++)
        {
            var key = (s_tables[random.Next(s_tables.Length)], random.Next(records).ToString(System.Globalization.CultureInfo.InvariantCulture));
            var existing = _edges.TryGetValue(key, out var e) ? e : [];
            before.TryAdd(key, existing);
            if (existing.Count > 0 && random.Next(4) == 0)
            {
                foreach (var bucket in existing)
                    Row(bucket, 3);
                _edges.Remove(key);
                continue;
            }
            // Insert or update; a quarter of the updates move the record.
            var desired = existing.Count > 0 && random.Next(4) != 0 ? new HashSet<string>(existing) : Desired();
            foreach (var bucket in desired)
                Row(bucket, existing.Contains(bucket) ? (short)2 : (short)1);
            foreach (var bucket in existing.Where(b => !desired.Contains(b)))
                Row(bucket, 3);
            _edges[key] = desired;

            void Row(string bucket, short operation)
            {
                bucketIds.Add(bucket);
                tables.Add(key.Item1);
                recordIds.Add(key.Item2);
                operations.Add(operation);
            }
        }

        var added = new List<(string, string, string)>();
        var removed = new List<(string, string, string)>();
        foreach (var (key, initial) in before)
        {
            var final = _edges.TryGetValue(key, out var now) ? now : [];
            removed.AddRange(initial.Where(b => !final.Contains(b)).Select(b => (key.Table, key.Record, b)));
            added.AddRange(final.Where(b => !initial.Contains(b)).Select(b => (key.Table, key.Record, b)));
        }

        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var transaction = await connection.BeginTransactionAsync();
        // In the order the changes came, as the writer's COPY.
        await using (var rows = new NpgsqlCommand(
            "INSERT INTO sync_changelog (bucket_id, table_name, record_id, operation) SELECT b, t, i, o FROM unnest($1::text[], $2::text[], $3::text[], $4::smallint[]) WITH ORDINALITY AS r(b, t, i, o, n) ORDER BY n",
            connection, transaction))
        {
            rows.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = [.. bucketIds] });
            rows.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = [.. tables] });
            rows.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = [.. recordIds] });
            rows.Parameters.Add(new NpgsqlParameter<short[]> { TypedValue = [.. operations] });
            await rows.ExecuteNonQueryAsync();
        }
        await using (var edges = new NpgsqlCommand(
            """
            DELETE FROM sync_bucket_edges e USING unnest($1::text[], $2::text[], $3::text[]) AS r(t, i, b)
            WHERE e.table_name = r.t AND e.record_id = r.i AND e.bucket_id = r.b;
            """, connection, transaction))
        {
            AddEdges(edges, removed);
            await edges.ExecuteNonQueryAsync();
        }
        await using (var edges = new NpgsqlCommand(
            "INSERT INTO sync_bucket_edges (table_name, record_id, bucket_id) SELECT * FROM unnest($1::text[], $2::text[], $3::text[])",
            connection, transaction))
        {
            AddEdges(edges, added);
            await edges.ExecuteNonQueryAsync();
        }
        await transaction.CommitAsync();
    }

    private HashSet<string> Desired()
    {
        var desired = new HashSet<string>(StringComparer.Ordinal) { AllBuckets[random.Next(AllBuckets.Count)] };
        if (random.Next(5) == 0)
            desired.Add(AllBuckets[random.Next(AllBuckets.Count)]);
        return desired;
    }

    private static void AddEdges(NpgsqlCommand command, List<(string Table, string Record, string Bucket)> edges)
    {
        command.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = [.. edges.Select(e => e.Table)], NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
        command.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = [.. edges.Select(e => e.Record)], NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
        command.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = [.. edges.Select(e => e.Bucket)], NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
    }

    /// <summary>Makes every row at or below <paramref name="seq"/> look <paramref name="age"/> old, keeping created_at non-decreasing in seq.</summary>
    public static async Task AgeAsync(string connectionString, long seq, TimeSpan age)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(
            "UPDATE sync_changelog SET created_at = now() - $2 + seq * interval '1 microsecond' - $1 * interval '1 microsecond' WHERE seq <= $1 AND created_at > now() - $2 + seq * interval '1 microsecond' - $1 * interval '1 microsecond'", connection);
        command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = seq });
        command.Parameters.Add(new NpgsqlParameter<TimeSpan> { TypedValue = age, NpgsqlDbType = NpgsqlDbType.Interval });
        await command.ExecuteNonQueryAsync();
    }
}
