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

    // Chunks of a prepared transaction were stored in the open changelog transaction.
    private bool _preparedChunksStored;

    /// <summary>Stores a chunk of a prepared transaction's changes, as the decoder sent it.</summary>
    private async Task StorePreparedChunkAsync(NpgsqlConnection connection, PreparedChunk chunk, CancellationToken cancellationToken)
    {
        // A stream restarted before the position passed this PREPARE sends it again: the new copy replaces any old one.
        if (chunk.Number == 0)
            await ChangelogStore.DeletePreparedAsync(connection, slotName, chunk.Gid, cancellationToken).ConfigureAwait(false);
        await ChangelogStore.SavePreparedChunkAsync(connection, slotName, chunk.Gid, chunk.Number, chunk.Records, cancellationToken).ConfigureAwait(false);
        _preparedChunksStored = true;
    }

    /// <summary>
    /// Applies <paramref name="step"/>; returns the source transactions it committed to the changelog (0 or 1), and
    /// whether it changed anything (invariant 9: a step of a prepared transaction that holds nothing for the
    /// changelog commits nothing of its own).
    /// </summary>
    private async Task<(int Transactions, bool Changed)> ApplyPreparedStepAsync(NpgsqlConnection connection, NpgsqlConnection sourceConnection, PreparedStep step, CancellationToken cancellationToken)
    {
        var stored = _preparedChunksStored;
        _preparedChunksStored = false;
        switch (step.Kind)
        {
            case PreparedStepKind.Prepare:
                return (0, stored);
            case PreparedStepKind.CommitPrepared:
                await WritePreparedAsync(connection, sourceConnection, step.Gid, cancellationToken).ConfigureAwait(false);
                var written = await ChangelogStore.DeletePreparedAsync(connection, slotName, step.Gid, cancellationToken).ConfigureAwait(false);
                return written > 0 ? (1, true) : (0, false);
            case PreparedStepKind.SkipCommitPrepared:
                var (kept, truncates) = await KeepPreparedAsync(connection, step, cancellationToken).ConfigureAwait(false);
                await ChangelogStore.DeletePreparedAsync(connection, slotName, step.Gid, cancellationToken).ConfigureAwait(false);
                await ChangelogStore.DeleteSkipAsync(connection, slotName, step.CommitLsn, cancellationToken).ConfigureAwait(false);
                LogTransactionSkipped(logger, step.Xid, step.CommitLsn, step.CommitTime, kept, 0, truncates);
                return (0, true);
            default:
                return (0, await ChangelogStore.DeletePreparedAsync(connection, slotName, step.Gid, cancellationToken).ConfigureAwait(false) > 0);
        }
    }

    /// <summary>Keeps a stored prepared transaction that is skipped on purpose in <c>sync_rule_failures</c>; returns its changes and TRUNCATEs.</summary>
    private async Task<(int Kept, int Truncates)> KeepPreparedAsync(NpgsqlConnection connection, PreparedStep step, CancellationToken cancellationToken)
    {
        var (kept, truncates) = (0, 0);
        var reason = SkipReason(step.CommitLsn);
        await ReadPreparedAsync(connection, step.Gid, async (batch, tables, options) =>
        {
            await KeepSkippedAsync(connection, batch, reason, cancellationToken).ConfigureAwait(false);
            kept += batch.Count;
            truncates += tables is null ? 0 : 1;
        }, cancellationToken).ConfigureAwait(false);
        return (kept, truncates);
    }

    /// <summary>Writes a stored prepared transaction's changes, chunk by chunk, in batches cut by the limits and at TRUNCATEs.</summary>
    private Task WritePreparedAsync(NpgsqlConnection connection, NpgsqlConnection sourceConnection, string gid, CancellationToken cancellationToken)
        => ReadPreparedAsync(connection, gid, async (batch, tables, options) =>
        {
            await WriteChangesAsync(connection, sourceConnection, batch, cancellationToken).ConfigureAwait(false);
            _changesInTransaction += batch.Count;
            if (tables is not null)
                await TruncateAsync(connection, tables, options, cancellationToken).ConfigureAwait(false);
        }, cancellationToken);

    /// <summary>
    /// Reads a stored prepared transaction back, chunk by chunk, and hands <paramref name="apply"/> its changes in
    /// batches cut by the limits and at each TRUNCATE (given with the changes before it).
    /// </summary>
    private async Task ReadPreparedAsync(NpgsqlConnection connection, string gid, Func<ChangeBatch, IReadOnlyList<Registry.TableRegistration>?, Protocol.Messages.TruncateOptions, Task> apply, CancellationToken cancellationToken)
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
                        // The changes before the TRUNCATE are applied first, then it, as for a streamed transaction.
                        await apply(batch, tables, options).ConfigureAwait(false);
                        batch.Clear();
                        bytes = 0;
                    }
                    else if (batch.Count >= limits.MaxRows || bytes >= limits.MaxBytes)
                    {
                        await apply(batch, null, default).ConfigureAwait(false);
                        batch.Clear();
                        bytes = 0;
                    }
                }
            }
            await apply(batch, null, default).ConfigureAwait(false);
        }
        finally
        {
            batch.Release();
        }
    }
}
