using Npgsql;
using NpgsqlTypes;
using Synchro.Pipeline.Changelog;

namespace Synchro.Pipeline.Benchmarks;

/// <summary>The COPY baseline: changelog rows through Npgsql's <c>NpgsqlBinaryImporter</c>, one value at a time.</summary>
internal static class ImporterCopy
{
    public static async Task WriteChangelogAsync(NpgsqlConnection connection, IReadOnlyList<ChangelogRow> rows)
    {
        await using var importer = await connection.BeginBinaryImportAsync(ChangelogStore.CopyChangelogSql);
        foreach (var row in rows)
        {
            await importer.StartRowAsync();
            await importer.WriteAsync(row.BucketId, NpgsqlDbType.Text);
            await importer.WriteAsync(row.TableName, NpgsqlDbType.Text);
            await importer.WriteAsync(row.RecordId, NpgsqlDbType.Text);
            await importer.WriteAsync((short)row.Operation, NpgsqlDbType.Smallint);
        }
        await importer.CompleteAsync();
    }
}
