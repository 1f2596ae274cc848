using Microsoft.Extensions.Logging;
using Npgsql;
using Synchro.Pipeline.Postgres;
using Synchro.Pipeline.Replication;

namespace Synchro.Pipeline;

// Decoding on a hot standby (16+): the standby writes no WAL, so what the pipeline writes into the source's WAL — heartbeats,
// the running-xacts record a new slot waits for — is written on its primary, in the source database, and replicates.
public sealed partial class WalPipeline
{
    // How often a slot creation on a standby asks the primary for a running-xacts record: each call writes one small
    // record; the creation needs one logged after it started waiting, which a single early call may miss.
    private static readonly TimeSpan s_standbySnapshotInterval = TimeSpan.FromMilliseconds(500);

    private StandbySource? _standby;
    private NpgsqlDataSource? _primary;

    /// <summary>The source database on the standby's primary; null when the source is a primary or none is known.</summary>
    private NpgsqlDataSource? Primary => _standby?.PrimaryConnectionString is { } primary
        ? _primary ??= _connections.DataSource(_options.StatementTimeouts.WithClientBackstop(SessionSearchPath.Source(primary)), PipelineConnectionKind.Primary)
        : null;

    /// <summary>Where heartbeats are written: the source, or on a standby its primary; null when there is nowhere (warned at start).</summary>
    private NpgsqlDataSource? HeartbeatTarget => _standby is null ? _source : Primary;

    /// <summary>
    /// Runs a slot creation; on a standby, asks the primary for standby snapshots (<c>pg_log_standby_snapshot()</c>) until it
    /// completes, because the creation waits for a running-xacts record to be replayed, which an idle primary logs rarely.
    /// </summary>
    private async Task<T> CreatingSlotAsync<T>(Func<CancellationToken, Task<T>> create, CancellationToken cancellationToken)
    {
        if (_standby is null)
            return await create(cancellationToken).ConfigureAwait(false);
        var creation = create(cancellationToken);
        if (Primary is not { } primary)
        {
            LogStandbySlotWaiting(_logger, _options.SlotName);
            return await creation.ConfigureAwait(false);
        }
        // Invariant: the creation is always awaited, so a failing primary never leaves it running unobserved.
        while (!creation.IsCompleted && !cancellationToken.IsCancellationRequested)
        {
            try
            {
                await using var command = primary.CreateCommand("SELECT pg_catalog.pg_log_standby_snapshot()");
                await command.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (NpgsqlException e) when (!cancellationToken.IsCancellationRequested)
            {
                LogStandbySnapshotFailed(_logger, e, _options.SlotName, e is PostgresException pg ? pg.MessageText : e.Message);
                break;
            }
            catch (Exception) when (cancellationToken.IsCancellationRequested)
            {
                break;
            }
            await Task.WhenAny(creation, Task.Delay(s_standbySnapshotInterval, cancellationToken)).ConfigureAwait(false);
        }
        return await creation.ConfigureAwait(false);
    }

    /// <summary>Takes the start-up checks' finding about a standby source, and says where its WAL writes go.</summary>
    private void UseStandby(StandbySource? standby)
    {
        _standby = standby;
        if (standby?.PrimaryConnectionString is { } primary)
        {
            var target = new NpgsqlConnectionStringBuilder(primary);
            LogStandbySource(_logger, target.Host, target.Port, target.Database);
        }
    }

    [LoggerMessage(EventId = Diagnostics.EventIds.StandbySource, Level = LogLevel.Information,
        Message = "The source is a hot standby: heartbeats and standby snapshots are written on its primary {Host}:{Port}/{Database}, and decoded here once replayed")]
    private static partial void LogStandbySource(ILogger logger, string? host, int port, string? database);

    [LoggerMessage(EventId = Diagnostics.EventIds.StandbySlotWaiting, Level = LogLevel.Warning,
        Message = "Creating replication slot {Slot} on a standby: the creation waits for the primary to log a running-xacts record (every 15 s while it writes, never while idle). "
            + "Run SELECT pg_log_standby_snapshot() on the primary to end the wait, or set PrimaryConnectionString so the pipeline does")]
    private static partial void LogStandbySlotWaiting(ILogger logger, string slot);

    [LoggerMessage(EventId = Diagnostics.EventIds.StandbySnapshotFailed, Level = LogLevel.Warning,
        Message = "Creating replication slot {Slot} on a standby: could not run pg_log_standby_snapshot() on the primary ({Reason}); the creation waits for the primary's own running-xacts record (every 15 s while it writes). "
            + "Grant the role EXECUTE on pg_log_standby_snapshot() on the primary, or run it there yourself")]
    private static partial void LogStandbySnapshotFailed(ILogger logger, Exception error, string slot, string reason);
}
