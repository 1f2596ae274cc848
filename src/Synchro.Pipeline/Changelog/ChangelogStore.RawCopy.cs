using Npgsql;

namespace Synchro.Pipeline.Changelog;

internal static partial class ChangelogStore
{
    /// <summary>
    /// Appends <paramref name="rows"/> to <c>sync_changelog</c> like <see cref="WriteChangelogAsync"/>, but encodes the
    /// binary COPY data itself (<see cref="PgCopyBinaryWriter"/>) and sends it through a raw binary COPY in 64 KiB writes.
    /// </summary>
    /// <remarks>
    /// Measured against <see cref="WriteChangelogAsync"/> by the Copy benchmarks; not used by the writer (yet).
    /// A failure cancels the COPY, so no part of <paramref name="rows"/> is stored.
    /// </remarks>
    public static async Task WriteChangelogRawAsync(NpgsqlConnection connection, IReadOnlyList<ChangelogRow> rows, CancellationToken ct)
    {
        if (rows.Count == 0)
            return;
        using var encoder = new PgCopyBinaryWriter();
        var stream = await connection.BeginRawBinaryCopyAsync(CopyChangelogSql, ct).ConfigureAwait(false);
        await using (stream.ConfigureAwait(false))
        {
            try
            {
                encoder.WriteHeader();
                for (var i = 0; i < rows.Count; i++)
                {
                    EncodeChangelogRow(encoder, rows[i]);
                    if (encoder.Length >= PgCopyBinaryWriter.FlushBytes)
                    {
                        await stream.WriteAsync(encoder.Written, ct).ConfigureAwait(false);
                        encoder.Clear();
                    }
                }
                encoder.WriteTrailer();
                await stream.WriteAsync(encoder.Written, ct).ConfigureAwait(false);
            }
            catch (Exception error) when (error is not NpgsqlException { InnerException: IOException })
            {
                // Ending the stream normally would store the rows sent so far (COPY accepts an end at a row boundary).
                await stream.CancelAsync().ConfigureAwait(false);
                throw;
            }
        }
    }

    /// <summary>One <c>sync_changelog</c> row in the column order of the COPY: bucket, table, record, operation.</summary>
    internal static void EncodeChangelogRow(PgCopyBinaryWriter encoder, ChangelogRow row)
    {
        encoder.StartRow(4);
        encoder.WriteText(row.BucketId);
        encoder.WriteText(row.TableName);
        encoder.WriteText(row.RecordId);
        encoder.WriteInt16((short)row.Operation);
    }
}
