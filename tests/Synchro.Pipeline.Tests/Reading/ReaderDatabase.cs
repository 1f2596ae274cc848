using Npgsql;
using Synchro.Pipeline.Reading;
using Synchro.Pipeline.Tests.Changelog;
using Synchro.Pipeline.Tests.Infrastructure;

namespace Synchro.Pipeline.Tests.Reading;

/// <summary>A migrated database with a data source and a reader over it, and brute-force answers to compare the reader with.</summary>
internal sealed class ReaderDatabase : IAsyncDisposable
{
    private ReaderDatabase(string connectionString, NpgsqlDataSource dataSource)
    {
        ConnectionString = connectionString;
        DataSource = dataSource;
        Reader = new ChangelogReader(dataSource);
    }

    public string ConnectionString { get; }

    public NpgsqlDataSource DataSource { get; }

    public ChangelogReader Reader { get; }

    public static async Task<ReaderDatabase> CreateAsync(PostgresServerFixture postgres, string prefix)
    {
        var connectionString = await SidecarDatabase.CreateAsync(postgres, prefix);
        return new ReaderDatabase(connectionString, NpgsqlDataSource.Create(connectionString));
    }

    public async Task ExecuteAsync(string sql, params object[] parameters)
    {
        await using var command = DataSource.CreateCommand(sql);
        foreach (var parameter in parameters)
            command.Parameters.Add(new NpgsqlParameter { Value = parameter });
        await command.ExecuteNonQueryAsync();
    }

    public async Task<long> ScalarAsync(string sql, params object[] parameters)
    {
        await using var command = DataSource.CreateCommand(sql);
        foreach (var parameter in parameters)
            command.Parameters.Add(new NpgsqlParameter { Value = parameter });
        return Convert.ToInt64(await command.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>Every changelog row of the buckets after each bucket's position in the cursor, in seq order: "seq|bucket|table|record|op".</summary>
    public async Task<List<string>> ChangesAfterAsync(IReadOnlyList<string> buckets, ChangelogCursor cursor)
    {
        var rows = new List<string>();
        await using var command = DataSource.CreateCommand("""
            SELECT c.seq, c.bucket_id, c.table_name, c.record_id, c.operation
            FROM sync_changelog c JOIN unnest($1::text[], $2::int8[]) AS b(bucket_id, after) ON b.bucket_id = c.bucket_id
            WHERE c.seq > b.after ORDER BY c.seq
            """);
        command.Parameters.Add(new NpgsqlParameter { Value = buckets.ToArray() });
        command.Parameters.Add(new NpgsqlParameter { Value = buckets.Select(cursor.PositionOf).ToArray() });
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
            rows.Add($"{reader.GetInt64(0)}|{reader.GetString(1)}|{reader.GetString(2)}|{reader.GetString(3)}|{reader.GetInt16(4)}");
        return rows;
    }

    /// <summary>Every member of the buckets: "bucket|table|record", sorted ordinally.</summary>
    public async Task<List<string>> MembersAsync(IReadOnlyList<string> buckets)
    {
        var rows = new List<string>();
        await using var command = DataSource.CreateCommand("SELECT bucket_id, table_name, record_id FROM sync_bucket_edges WHERE bucket_id = ANY($1)");
        command.Parameters.Add(new NpgsqlParameter { Value = buckets.ToArray() });
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
            rows.Add($"{reader.GetString(0)}|{reader.GetString(1)}|{reader.GetString(2)}");
        rows.Sort(StringComparer.Ordinal);
        return rows;
    }

    public static string Render(ChangelogEntry entry) => $"{entry.Seq}|{entry.BucketId}|{entry.TableName}|{entry.RecordId}|{(short)entry.Operation}";

    public async ValueTask DisposeAsync() => await DataSource.DisposeAsync();
}
