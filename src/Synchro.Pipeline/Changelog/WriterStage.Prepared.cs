using Npgsql;
using Synchro.Pipeline.Decoding;
using Synchro.Pipeline.Decoding.Items;
using Synchro.Pipeline.Decoding.Spill;

namespace Synchro.Pipeline.Changelog;

/// <summary>Two-phase steps: each runs in a database transaction that commits with the position after it.</summary>
/// <remarks>
/// Invariant 1 of docs/architecture.md for prepared transactions: once the position passes a PREPARE, the server never sends its changes
/// again (only COMMIT PREPARED), so they are stored in <c>sync_prepared_transactions</c> in the same database
/// transaction as that position; COMMIT PREPARED writes them and deletes them in the transaction of its position.
/// </remarks>
internal sealed partial class WriterStage
{
    // One batch at a time is read back from a stored prepared transaction.
    private readonly ChangeBatchPool _preparedBatches = new(capacity: 1);

    /// <summary>Stores a chunk of a prepared transaction's changes, as the decoder sent it.</summary>
    private async Task StorePreparedChunkAsync(NpgsqlConnection connection, PreparedChunk chunk, CancellationToken cancellationToken)
    {
        // A stream restarted before the position passed this PREPARE sends it again: the new copy replaces any old one.
        if (chunk.Number == 0)
            await ChangelogStore.DeletePreparedAsync(connection, slotName, chunk.Gid, cancellationToken).ConfigureAwait(false);
        await ChangelogStore.SavePreparedChunkAsync(connection, slotName, chunk.Gid, chunk.Number, chunk.Records, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Applies <paramref name="step"/>; returns the source transactions it committed to the changelog (0 or 1).</summary>
    private async Task<int> ApplyPreparedStepAsync(NpgsqlConnection connection, NpgsqlConnection sourceConnection, PreparedStep step, CancellationToken cancellationToken)
    {
        switch (step.Kind)
        {
            case PreparedStepKind.Prepare:
                return 0;
            case PreparedStepKind.CommitPrepared:
                await WritePreparedAsync(connection, sourceConnection, step.Gid, cancellationToken).ConfigureAwait(false);
                await ChangelogStore.DeletePreparedAsync(connection, slotName, step.Gid, cancellationToken).ConfigureAwait(false);
                return 1;
            default:
                await ChangelogStore.DeletePreparedAsync(connection, slotName, step.Gid, cancellationToken).ConfigureAwait(false);
                return 0;
        }
    }

    /// <summary>Writes a stored prepared transaction's changes, chunk by chunk, in batches cut by the limits and at TRUNCATEs.</summary>
    private async Task WritePreparedAsync(NpgsqlConnection connection, NpgsqlConnection sourceConnection, string gid, CancellationToken cancellationToken)
    {
        var batch = _preparedBatches.Rent();
        try
        {
            SpillRecordReader? reader = null;
            long bytes = 0;
            for (var number = 0; ; number++)
            {
                var data = await ChangelogStore.LoadPreparedChunkAsync(connection, slotName, gid, number, cancellationToken).ConfigureAwait(false);
                if (data is null)
                    break;
                var source = $"sync_prepared_transactions (gid '{gid}', chunk {number})";
                var stream = new MemoryStream(data, writable: false);
                if (reader is null)
                    reader = new SpillRecordReader(stream, registry, source);
                else
                    reader.Continue(stream, source);
                while (reader.TryRead(batch, out var recordBytes))
                {
                    bytes += recordBytes;
                    if (reader.TakeTruncate(out var tables, out var options))
                    {
                        // The changes before the TRUNCATE are written first, then it, as for a streamed transaction.
                        await WriteReadBackAsync(connection, sourceConnection, batch, cancellationToken).ConfigureAwait(false);
                        bytes = 0;
                        await TruncateAsync(connection, tables, options, cancellationToken).ConfigureAwait(false);
                    }
                    else if (batch.Count >= limits.MaxRows || bytes >= limits.MaxBytes)
                    {
                        await WriteReadBackAsync(connection, sourceConnection, batch, cancellationToken).ConfigureAwait(false);
                        bytes = 0;
                    }
                }
            }
            await WriteReadBackAsync(connection, sourceConnection, batch, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            batch.Release();
        }
    }

    private async Task WriteReadBackAsync(NpgsqlConnection connection, NpgsqlConnection sourceConnection, ChangeBatch batch, CancellationToken cancellationToken)
    {
        await WriteChangesAsync(connection, sourceConnection, batch, cancellationToken).ConfigureAwait(false);
        _changesInTransaction += batch.Count;
        batch.Clear();
    }
}
