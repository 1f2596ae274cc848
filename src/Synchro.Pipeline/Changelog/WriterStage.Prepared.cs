using Npgsql;
using Synchro.Pipeline.Decoding;
using Synchro.Pipeline.Decoding.Spill;

namespace Synchro.Pipeline.Changelog;

/// <summary>Two-phase steps: each runs in the database transaction of its batch, so it commits with the position after it.</summary>
/// <remarks>
/// Invariant 1 for prepared transactions: once the position passes a PREPARE, the server never sends its changes
/// again (only COMMIT PREPARED), so they are stored in <c>sync_prepared_transactions</c> in the same database
/// transaction as that position; COMMIT PREPARED writes them and deletes them in the transaction of its position.
/// </remarks>
internal sealed partial class WriterStage
{
    // One batch at a time is read back from a stored prepared transaction.
    private readonly ChangeBatchPool _preparedBatches = new(capacity: 1);

    /// <summary>Applies <paramref name="action"/>; returns the changes it wrote to the changelog.</summary>
    private async Task<int> ApplyPreparedAsync(NpgsqlConnection connection, NpgsqlConnection sourceConnection, PreparedAction action, CancellationToken cancellationToken)
    {
        switch (action.Kind)
        {
            case PreparedActionKind.Prepare:
                await StorePreparedAsync(connection, action, cancellationToken).ConfigureAwait(false);
                return 0;
            case PreparedActionKind.CommitPrepared:
                return await WritePreparedAsync(connection, sourceConnection, action, cancellationToken).ConfigureAwait(false);
            default:
                await ChangelogStore.DeletePreparedAsync(connection, slotName, action.Gid, cancellationToken).ConfigureAwait(false);
                return 0;
        }
    }

    private async Task StorePreparedAsync(NpgsqlConnection connection, PreparedAction action, CancellationToken cancellationToken)
    {
        // A stream restarted before the position passed this PREPARE sends it again: the new copy replaces any old one.
        await ChangelogStore.DeletePreparedAsync(connection, slotName, action.Gid, cancellationToken).ConfigureAwait(false);
        if (action.SpillPath is not { } path)
            return;
        var batch = _preparedBatches.Rent();
        try
        {
            using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1, FileOptions.SequentialScan | FileOptions.DeleteOnClose);
            using var chunk = new MemoryStream();
            var reader = new SpillRecordReader(file, registry, path);
            for (var number = 0; ; number++)
            {
                var more = Fill(reader, batch, action.Limits);
                if (batch.Count > 0 || batch.TruncatedTables.Count > 0)
                {
                    chunk.SetLength(0);
                    new SpillRecordWriter(chunk).Append(batch);
                    await ChangelogStore.SavePreparedChunkAsync(connection, slotName, action.Gid, number, chunk.GetBuffer().AsMemory(0, (int)chunk.Length), cancellationToken).ConfigureAwait(false);
                    batch.Clear();
                }
                if (!more)
                    return;
            }
        }
        catch (IOException e)
        {
            throw SpillStore.Failed("read", path, e);
        }
        finally
        {
            batch.Release();
        }
    }

    private async Task<int> WritePreparedAsync(NpgsqlConnection connection, NpgsqlConnection sourceConnection, PreparedAction action, CancellationToken cancellationToken)
    {
        var written = 0;
        var batch = _preparedBatches.Rent();
        try
        {
            for (var number = 0; ; number++)
            {
                var data = await ChangelogStore.LoadPreparedChunkAsync(connection, slotName, action.Gid, number, cancellationToken).ConfigureAwait(false);
                if (data is null)
                    break;
                using (var stream = new MemoryStream(data, writable: false))
                {
                    var reader = new SpillRecordReader(stream, registry, $"sync_prepared_transactions (gid '{action.Gid}', chunk {number})");
                    while (reader.TryRead(batch, out _))
                    {
                        if (!reader.TakeTruncate(out var tables, out var options))
                            continue;
                        // The changes before the TRUNCATE are written first, then it, as for a streamed transaction.
                        await WriteAsync(connection, sourceConnection, batch, cancellationToken).ConfigureAwait(false);
                        written += batch.Count;
                        batch.Clear();
                        batch.TruncatedTables.AddRange(tables);
                        batch.TruncateOptions = options;
                        await WriteAsync(connection, sourceConnection, batch, cancellationToken).ConfigureAwait(false);
                        batch.Clear();
                    }
                }
                await WriteAsync(connection, sourceConnection, batch, cancellationToken).ConfigureAwait(false);
                written += batch.Count;
                batch.Clear();
            }
        }
        finally
        {
            batch.Release();
        }
        await ChangelogStore.DeletePreparedAsync(connection, slotName, action.Gid, cancellationToken).ConfigureAwait(false);
        return written;
    }

    /// <summary>Reads changes into <paramref name="batch"/> up to the limits; false once the reader is exhausted.</summary>
    private static bool Fill(SpillRecordReader reader, ChangeBatch batch, BatchLimits limits)
    {
        long bytes = 0;
        while (batch.Count < limits.MaxRows && bytes < limits.MaxBytes)
        {
            if (!reader.TryRead(batch, out var recordBytes))
                return false;
            if (reader.TakeTruncate(out var tables, out var options))
            {
                // A chunk ends at a TRUNCATE, which is stored after the chunk's changes (SpillRecordWriter.Append).
                batch.TruncatedTables.AddRange(tables);
                batch.TruncateOptions = options;
                return true;
            }
            bytes += recordBytes;
        }
        return true;
    }
}
