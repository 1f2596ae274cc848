using Microsoft.Extensions.Logging;
using Npgsql;
using Synchro.Pipeline.Changelog;
using Synchro.Pipeline.Diagnostics;
using Synchro.Pipeline.Protocol;

namespace Synchro.Pipeline;

// Skipping one source transaction on purpose, like PostgreSQL's ALTER SUBSCRIPTION ... SKIP (lsn = ...).
public sealed partial class WalPipeline
{
    /// <summary>
    /// Asks the pipeline of <paramref name="options"/>' slot to skip the source transaction committed at
    /// <paramref name="commitLsn"/> — one the changelog cannot take, named by the error that stopped the pipeline.
    /// </summary>
    /// <remarks>
    /// One-shot: the next run that reaches the transaction keeps its changes in <c>sync_rule_failures</c> (where
    /// <c>replay-failures</c> applies them once the cause is fixed) instead of the changelog, logs it (event 3004), and
    /// forgets the request in the same database transaction that moves the position past it. A later request replaces an
    /// earlier one. Works whether or not the pipeline runs; a running pipeline takes it at its next start or reconnect.
    /// Migrates the sidecar tables first when a migration is pending.
    /// </remarks>
    /// <param name="options">The pipeline's options (connection strings and slot name are used).</param>
    /// <param name="commitLsn">The LSN of the transaction's commit record, as the error gave it.</param>
    /// <param name="cancellationToken">Cancels the request.</param>
    /// <exception cref="ArgumentException">The position is not valid, or the pipeline is already past it (nothing left to skip).</exception>
    /// <exception cref="WalPipelineConfigurationException">A migration of the sidecar tables is pending and the role may not run it, or the changelog schema is missing.</exception>
    public static async Task SkipTransactionAsync(WalPipelineOptions options, Lsn commitLsn, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (!commitLsn.IsValid)
            throw new ArgumentException("The commit LSN of the transaction to skip must be a valid position such as 0/16B3748.", nameof(commitLsn));
        var changelog = options.Connections.DataSource(options.ChangelogSessionString, PipelineConnectionKind.Changelog);
        await using (changelog.ConfigureAwait(false))
        {
            var connection = await changelog.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            await using (connection.ConfigureAwait(false))
            {
                await MigrateIfPendingAsync(connection, options.ChangelogSchemaName, options.LoggerFactory.CreateLogger(LogCategory), cancellationToken).ConfigureAwait(false);
                var position = await ChangelogStore.LoadPositionAsync(connection, options.SlotName, cancellationToken).ConfigureAwait(false);
                // The position is the end of a commit record, so a transaction committed at it or after it is still to come.
                if (position is { IsValid: true } persisted && commitLsn < persisted)
                {
                    throw new ArgumentException(
                        $"The pipeline of slot '{options.SlotName}' is already past {commitLsn} (its position is {persisted}): "
                        + "the transaction committed there was applied or skipped already, so there is nothing to skip. "
                        + "Check the LSN against the error that stopped the pipeline.", nameof(commitLsn));
                }
                await ChangelogStore.RequestSkipAsync(connection, options.SlotName, commitLsn, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>The pending request to skip a transaction, if any (read at every run start).</summary>
    private async Task<Lsn> LoadSkipAsync(NpgsqlConnection connection, CancellationToken cancellationToken)
    {
        var skip = await ChangelogStore.LoadSkipAsync(connection, _options.SlotName, cancellationToken).ConfigureAwait(false);
        if (skip is not { } lsn)
            return Lsn.Invalid;
        LogSkipPending(_logger, lsn);
        return lsn;
    }

    [LoggerMessage(EventId = EventIds.SkipPending, Level = LogLevel.Warning,
        Message = "The source transaction committed at {CommitLsn} is to be skipped (synchro-pipeline skip): when it arrives, its changes go to sync_rule_failures instead of the changelog")]
    private static partial void LogSkipPending(ILogger logger, Lsn commitLsn);
}
