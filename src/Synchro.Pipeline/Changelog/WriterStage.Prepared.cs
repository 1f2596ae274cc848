using System.Globalization;
using Microsoft.Extensions.Logging;
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
/// Stored chunks are checked as they are read (the spill format's header and per-record checksums): damaged ones cannot
/// be read again from the server, so they stop the pipeline with what to do, and a transaction skipped on purpose keeps
/// what can still be read. Rows of format version 0 (stored before the format had a header) are still read.
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
                await WritePreparedAsync(connection, sourceConnection, step, cancellationToken).ConfigureAwait(false);
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
        var damage = await ReadPreparedAsync(connection, step.Gid, async (batch, tables, options) =>
        {
            await KeepSkippedAsync(connection, batch, reason, cancellationToken).ConfigureAwait(false);
            kept += batch.Count;
            truncates += tables is null ? 0 : 1;
        }, applyBeforeDamage: true, cancellationToken).ConfigureAwait(false);
        if (damage is not null)
            LogStoredPreparedDamaged(logger, step.Gid, step.CommitLsn, damage.Message, kept);
        return (kept, truncates);
    }

    /// <summary>Writes a stored prepared transaction's changes, chunk by chunk, in batches cut by the limits and at TRUNCATEs.</summary>
    /// <exception cref="WalPipelineException">The stored changes are damaged or of a newer format: nothing of them is written.</exception>
    private async Task WritePreparedAsync(NpgsqlConnection connection, NpgsqlConnection sourceConnection, PreparedStep step, CancellationToken cancellationToken)
    {
        var damage = await ReadPreparedAsync(connection, step.Gid, async (batch, tables, options) =>
        {
            await WriteChangesAsync(connection, sourceConnection, batch, cancellationToken).ConfigureAwait(false);
            _changesInTransaction += batch.Count;
            if (tables is not null)
                await TruncateAsync(connection, tables, options, cancellationToken).ConfigureAwait(false);
        }, applyBeforeDamage: false, cancellationToken).ConfigureAwait(false);
        if (damage is not null)
            throw StoredPreparedUnreadable(step, damage);
    }

    /// <summary>
    /// Stored changes of a prepared transaction that cannot be read: the server will not send them again, so the message
    /// says exactly that, and how to go on (the changelog transaction that holds anything written of them rolls back).
    /// </summary>
    private WalPipelineException StoredPreparedUnreadable(PreparedStep step, SpillDamagedException damage)
    {
        var gid = step.Gid;
        var lsn = step.CommitLsn.ToString();
        var skip = $"synchro-pipeline skip --lsn {lsn} (the library: WalPipeline.SkipTransactionAsync), then start the pipeline";
        if (damage.NewerVersion is { } version)
        {
            return new WalPipelineException(
                $"The stored changes of prepared transaction '{gid}' (sync_prepared_transactions, slot {slotName}) are in spill format version "
                + $"{version.ToString(CultureInfo.InvariantCulture)}, which this version of Synchro.Pipeline cannot read (it reads versions 0 to {SpillFormat.CurrentVersion.ToString(CultureInfo.InvariantCulture)}): "
                + $"a newer version stored them. Nothing of the transaction was written. Run the newer version until its COMMIT PREPARED (at {lsn}) is applied; "
                + $"or, to go on without them, {skip}: they are then lost to the changelog.", damage);
        }
        return new WalPipelineException(
            $"The stored changes of prepared transaction '{gid}' (sync_prepared_transactions, slot {slotName}) cannot be used: {damage.Message} "
            + "The server will not send them again: the changelog's position is past the transaction's PREPARE, after which a two-phase slot sends only its "
            + $"COMMIT PREPARED (at {lsn}). Nothing of the transaction was written. To go on without it, {skip}: the changes before the damage are kept "
            + "in sync_rule_failures for replay-failures, the rest are lost to the changelog, so the clients of the tables the transaction wrote should resync.", damage);
    }

    /// <summary>
    /// Reads a stored prepared transaction back, chunk by chunk, and hands <paramref name="apply"/> its changes in
    /// batches cut by the limits and at each TRUNCATE (given with the changes before it). Returns the damage that ended
    /// the reading early, or null; the changes read before it are applied only when <paramref name="applyBeforeDamage"/>.
    /// </summary>
    private async Task<SpillDamagedException?> ReadPreparedAsync(NpgsqlConnection connection, string gid, Func<ChangeBatch, IReadOnlyList<TruncatedTable>?, Protocol.Messages.TruncateOptions, Task> apply,
        bool applyBeforeDamage, CancellationToken cancellationToken)
    {
        var batch = _preparedBatches.Rent();
        try
        {
            SpillDamagedException? damage = null;
            try
            {
                SpillRecordReader? reader = null;
                long bytes = 0;
                for (var number = 0; ; number++)
                {
                    var data = await ChangelogStore.LoadPreparedChunkAsync(connection, slotName, gid, number, cancellationToken).ConfigureAwait(false);
                    if (data is null)
                        break;
                    var source = $"sync_prepared_transactions (slot {slotName}, gid '{gid}', chunk {number})";
                    var stream = new MemoryStream(data, writable: false);
                    if (reader is null)
                        reader = new SpillRecordReader(stream, registry, source, acceptsUnversioned: true);
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
            }
            catch (SpillDamagedException e)
            {
                damage = e;
            }
            if (damage is null || applyBeforeDamage)
                await apply(batch, null, default).ConfigureAwait(false);
            return damage;
        }
        finally
        {
            batch.Release();
        }
    }

    [LoggerMessage(EventId = Diagnostics.EventIds.StoredPreparedTransactionDamaged, Level = LogLevel.Warning,
        Message = "The stored changes of prepared transaction '{Gid}', skipped as asked at {CommitLsn}, could not all be read ({Problem}): "
            + "the {Kept} change(s) before the damage were kept in sync_rule_failures, the rest are lost; resync the clients of the tables it wrote")]
    private static partial void LogStoredPreparedDamaged(ILogger logger, string gid, Protocol.Lsn commitLsn, string problem, int kept);
}
