using Microsoft.Extensions.Logging;
using Npgsql;
using Npgsql.Replication;
using Synchro.Pipeline.Changelog;
using Synchro.Pipeline.Postgres;
using Synchro.Pipeline.Protocol;
using Synchro.Pipeline.Replication;

namespace Synchro.Pipeline;

// Invariant 8 of docs/architecture.md: the persisted position belongs to the source it was read from. Checked before
// anything is created on the source at start, and again before every run streams (a reconnect may reach another server).
public sealed partial class WalPipeline
{
    /// <summary>
    /// Checks that the position persisted for <paramref name="slotName"/> belongs to the source, as <see cref="RunAsync"/> does
    /// at start and at every reconnect: saved from the same cluster and database, on the server's timeline history, not
    /// ahead of the server's WAL, and not behind what the slot has confirmed. Read-only.
    /// </summary>
    /// <param name="connectionString">The source database's connection string (the role needs the REPLICATION attribute: the check identifies the server over a replication connection).</param>
    /// <param name="changelogConnectionString">The changelog database's connection string; null when it is the source database.</param>
    /// <param name="slotName">The replication slot whose position is checked.</param>
    /// <param name="cancellationToken">Cancels the check.</param>
    /// <returns>
    /// The problems, each saying what happened, what was or would be lost and the commands that recover; empty when the
    /// position fits, when none is persisted, or when the sidecar tables do not exist yet.
    /// </returns>
    /// <exception cref="ArgumentException">The slot name is invalid, or a connection string is empty.</exception>
    /// <exception cref="NpgsqlException">A database could not be reached, or refused the replication connection.</exception>
    public static Task<IReadOnlyList<string>> CheckPositionAsync(string connectionString, string? changelogConnectionString, string slotName, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(connectionString);
        if (!PgIdentifier.IsValid(slotName))
            throw new ArgumentException(StartupChecks.InvalidSlotName(slotName), nameof(slotName));
        return CheckPositionAsync(PostgresConnections.Plain, SessionSearchPath.Source(connectionString),
            SessionSearchPath.Changelog(changelogConnectionString ?? connectionString), slotName, cancellationToken);
    }

    /// <summary>
    /// As <see cref="CheckPositionAsync(string, string?, string, CancellationToken)"/>, with the connections of
    /// <paramref name="options"/>: its connection strings, slot, <see cref="WalPipelineOptions.ConfigureDataSource"/> and
    /// <see cref="WalPipelineOptions.PasswordProvider"/>.
    /// </summary>
    /// <param name="options">The pipeline's options (connection strings, slot name and connection hooks are used).</param>
    /// <param name="cancellationToken">Cancels the check.</param>
    /// <returns>The problems, as the other overload returns them.</returns>
    /// <exception cref="ArgumentException">An option is invalid (the message names it).</exception>
    /// <exception cref="NpgsqlException">A database could not be reached, or refused the replication connection.</exception>
    public static Task<IReadOnlyList<string>> CheckPositionAsync(WalPipelineOptions options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        return CheckPositionAsync(options.Connections, options.SourceSessionString, options.ChangelogSessionString, options.SlotName, cancellationToken);
    }

    private static async Task<IReadOnlyList<string>> CheckPositionAsync(
        PostgresConnections connections, string sourceSessions, string changelogSessions, string slotName, CancellationToken cancellationToken)
    {
        var source = connections.DataSource(sourceSessions, PipelineConnectionKind.Source);
        await using (source.ConfigureAwait(false))
        {
            var changelog = connections.DataSource(changelogSessions, PipelineConnectionKind.Changelog);
            await using (changelog.ConfigureAwait(false))
            {
                var found = await CheckPersistedPositionAsync(connections, source, changelog, sourceSessions, slotName, null, identify: false, slotConfirmsOnlyPersisted: true, cancellationToken).ConfigureAwait(false);
                return found.Problem is { } problem ? [problem.Message] : [];
            }
        }
    }

    /// <summary>What the position check found: the source (null when it was not identified), the slot's row, the problem.</summary>
    private readonly record struct PositionCheck(SourceState? Source, PersistedPosition? Persisted, PositionProblem? Problem);

    /// <summary>
    /// Reads the slot, the persisted position and the server's identity, in that order (<see cref="SourceIdentification"/>),
    /// and checks the position against them. The server is identified over <paramref name="replication"/>, or over a
    /// connection of its own when that is null — only when there is a position to check, unless <paramref name="identify"/>.
    /// </summary>
    private static async Task<PositionCheck> CheckPersistedPositionAsync(
        PostgresConnections connections,
        NpgsqlDataSource source,
        NpgsqlDataSource changelog,
        string connectionString,
        string slotName,
        ReplicationConnection? replication,
        bool identify,
        bool slotConfirmsOnlyPersisted,
        CancellationToken cancellationToken)
    {
        SourceDatabase database;
        var connection = await source.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using (connection.ConfigureAwait(false))
            database = await SourceIdentification.ReadDatabaseAsync(connection, slotName, cancellationToken).ConfigureAwait(false);

        PersistedPosition? persisted;
        connection = await changelog.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using (connection.ConfigureAwait(false))
        {
            try
            {
                persisted = await ChangelogStore.LoadPersistedPositionAsync(connection, slotName, cancellationToken).ConfigureAwait(false);
            }
            catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UndefinedTable)
            {
                // Not migrated yet (check and status): nothing persisted.
                persisted = null;
            }
        }
        if (!identify && persisted is not { Position.IsValid: true })
            return new PositionCheck(null, persisted, null);

        LogicalReplicationConnection? own = null;
        try
        {
            if (replication is null)
            {
                own = await connections.ReplicationAsync(await ReplicationConnectionStringAsync(connections, connectionString, cancellationToken).ConfigureAwait(false), cancellationToken).ConfigureAwait(false);
                await own.Open(cancellationToken).ConfigureAwait(false);
                replication = own;
            }
            var state = await SourceIdentification.IdentifyAsync(replication, database, cancellationToken).ConfigureAwait(false);
            var history = PositionBinding.NeedsHistory(persisted, state)
                ? await SourceIdentification.ReadHistoryAsync(replication, state.Identity.Timeline, cancellationToken).ConfigureAwait(false)
                : null;
            return new PositionCheck(state, persisted, PositionBinding.Verify(slotName, persisted, state, history, slotConfirmsOnlyPersisted));
        }
        finally
        {
            if (own is not null)
                await own.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>Checks the position before a run streams or before the start creates anything; throws the refusal.</summary>
    /// <exception cref="WalPipelineConfigurationException">The position does not belong to the source (<see cref="WalPipelineConfigurationException.RefusesPosition"/>).</exception>
    private async Task<PositionCheck> VerifyPositionAsync(ReplicationConnection? replication, CancellationToken cancellationToken)
    {
        var found = await CheckPersistedPositionAsync(_connections, _source, _changelog, _sourceConnectionString, _options.SlotName, replication, identify: true, slotConfirmsOnlyPersisted: !_options.DiscardWrites, cancellationToken).ConfigureAwait(false);
        if (found.Problem is { } problem)
            throw new WalPipelineConfigurationException([problem.Message]) { RefusesPosition = true };
        return found;
    }

    /// <summary>
    /// The slot was missing and this start created it while the changelog held a position of the earlier slot of that name: the
    /// position moves to the new slot's start, which is where its stream begins; the changes in between are not in the changelog.
    /// </summary>
    private async Task MoveToNewSlotAsync(SourceIdentity identity, Lsn earlier, CancellationToken cancellationToken)
    {
        SourceDatabase database;
        await using (var connection = await _source.OpenConnectionAsync(cancellationToken).ConfigureAwait(false))
            database = await SourceIdentification.ReadDatabaseAsync(connection, _options.SlotName, cancellationToken).ConfigureAwait(false);
        if (database.SlotConfirmed is not { IsValid: true } created)
            return;
        // Invariant 9: written on the changelog lock's session.
        var changelog = await _changelogLock!.EnsureAsync(cancellationToken).ConfigureAwait(false);
        await using (var transaction = await changelog.BeginTransactionAsync(cancellationToken).ConfigureAwait(false))
        {
            await using (var durable = new NpgsqlCommand("SET LOCAL synchronous_commit = on", changelog, transaction))
                await durable.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            await ChangelogStore.SavePositionAsync(changelog, _options.SlotName, identity, created, cancellationToken).ConfigureAwait(false);
            await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        }
        LogSlotRecreatedAfterPosition(_logger, _options.SlotName, earlier, created);
    }

    [LoggerMessage(EventId = Diagnostics.EventIds.PositionRefused, Level = LogLevel.Critical, Message = "Refused the persisted position: {Problem}")]
    private static partial void LogPositionRefused(ILogger logger, Exception error, string problem);

    [LoggerMessage(EventId = Diagnostics.EventIds.ConfirmOnStopRefused, Level = LogLevel.Error,
        Message = "Did not confirm position {Position} to the server on stop: the server's WAL ends at {WalEnd}, before it, and advancing the slot there would discard every change up to it. "
            + "The next start refuses the persisted position and says how to recover")]
    private static partial void LogConfirmOnStopRefused(ILogger logger, Lsn position, Lsn walEnd);

    [LoggerMessage(EventId = Diagnostics.EventIds.SlotRecreatedAfterPosition, Level = LogLevel.Warning,
        Message = "Replication slot {Slot} did not exist and was created again, at {Created}; the changelog's position {Earlier} belonged to the earlier slot of that name. "
            + "Changes committed between the two are not in the changelog: have clients of the affected buckets resync (with InitialSnapshot on, sync_bucket_edges is reloaded from the new slot's snapshot)")]
    private static partial void LogSlotRecreatedAfterPosition(ILogger logger, string slot, Lsn earlier, Lsn created);
}
