using Npgsql;
using NpgsqlTypes;
using Synchro.Pipeline.Changelog;

namespace Synchro.Pipeline.LoadHarness.Contenders;

/// <summary>
/// Figure 2's denominator: exactly the rows our end-to-end run wrote (changelog and edges), stored by
/// one binary COPY per table into empty copies of the tables (the library's own DDL and indexes) in
/// a fresh database, in one transaction. Only the COPYs and the commit are timed.
/// </summary>
internal static class BinaryCopyBaseline
{
    private sealed record Row(string A, string B, string C, short Operation);

    public static async Task<ContenderResult> RunAsync(ContenderSpec spec, CancellationToken ct)
    {
        List<Row> changelogRows, edgeRows;
        await using (var written = new NpgsqlConnection(spec.ChangelogConnectionString))
        {
            await written.OpenAsync(ct);
            changelogRows = await LoadAsync(written, "SELECT bucket_id, table_name, record_id, operation FROM sync_changelog ORDER BY seq", ct);
            edgeRows = await LoadAsync(written, "SELECT table_name, record_id, bucket_id, 0::smallint FROM sync_bucket_edges", ct);
        }

        await using var target = new NpgsqlConnection(ContenderNames.AsWriter(spec.CopyTargetConnectionString));
        await target.OpenAsync(ct);
        await ChangelogSchema.EnsureAsync(target, ct);
        await using (var durable = new NpgsqlCommand("SET synchronous_commit = on", target))
            await durable.ExecuteNonQueryAsync(ct);

        var usage = ProcessUsage.Now();
        await using (var transaction = await target.BeginTransactionAsync(ct))
        {
            await using (var copy = await target.BeginBinaryImportAsync("COPY sync_changelog (bucket_id, table_name, record_id, operation) FROM STDIN (FORMAT BINARY)", ct))
            {
                foreach (var row in changelogRows)
                {
                    await copy.StartRowAsync(ct);
                    await copy.WriteAsync(row.A, NpgsqlDbType.Text, ct);
                    await copy.WriteAsync(row.B, NpgsqlDbType.Text, ct);
                    await copy.WriteAsync(row.C, NpgsqlDbType.Text, ct);
                    await copy.WriteAsync(row.Operation, NpgsqlDbType.Smallint, ct);
                }
                await copy.CompleteAsync(ct);
            }
            await using (var copy = await target.BeginBinaryImportAsync("COPY sync_bucket_edges (table_name, record_id, bucket_id) FROM STDIN (FORMAT BINARY)", ct))
            {
                foreach (var row in edgeRows)
                {
                    await copy.StartRowAsync(ct);
                    await copy.WriteAsync(row.A, NpgsqlDbType.Text, ct);
                    await copy.WriteAsync(row.B, NpgsqlDbType.Text, ct);
                    await copy.WriteAsync(row.C, NpgsqlDbType.Text, ct);
                }
                await copy.CompleteAsync(ct);
            }
            await transaction.CommitAsync(ct);
        }
        return ProcessUsage.Since(usage, new ContenderResult
        {
            Name = spec.Name,
            ReachedEnd = true,
            ChangelogRows = changelogRows.Count,
            EdgeRows = edgeRows.Count,
        });
    }

    private static async Task<List<Row>> LoadAsync(NpgsqlConnection connection, string sql, CancellationToken ct)
    {
        var rows = new List<Row>();
        await using var command = new NpgsqlCommand(sql, connection) { CommandTimeout = 0 };
        await using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
            rows.Add(new Row(reader.GetString(0), reader.GetString(1), reader.GetString(2), reader.GetInt16(3)));
        return rows;
    }
}
