using Npgsql;
using Synchro.Pipeline.Replication;
using Synchro.Pipeline.Runtime;

namespace Synchro.Pipeline;

// Exactly once across a primary failover (docs/failover.md).
public sealed partial class WalPipeline
{
    private const string ChangelogSystemIdSql = "SELECT system_identifier FROM pg_catalog.pg_control_system()";

    /// <summary>
    /// The failover confirm rule for this run, or null when it does not apply: it applies with <see cref="WalPipelineOptions.Failover"/>
    /// when the changelog lives in the source cluster, whose standbys the failover slot is synced to. A changelog in another cluster is
    /// not lost with the source's primary, and <c>synchronized_standby_slots</c> alone keeps the slot behind what the standbys have.
    /// </summary>
    private async Task<StandbyFlushGate?> FailoverGateAsync(SourceIdentity source, CancellationToken cancellationToken)
    {
        if (!_options.Failover || !_options.ConfirmAfterStandbys || _options.DiscardWrites)
            return null;
        if (_options.ChangelogConnectionString is null)
            return new StandbyFlushGate(_changelog);
        var connection = await _changelog.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using (connection.ConfigureAwait(false))
        {
            await using var command = new NpgsqlCommand(ChangelogSystemIdSql, connection);
            try
            {
                var systemId = await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false);
                return systemId is long id && unchecked((ulong)id) != source.SystemId ? null : new StandbyFlushGate(_changelog);
            }
            catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.InsufficientPrivilege)
            {
                // Not allowed to tell: hold confirms as if it were the source cluster, which is never less safe.
                return new StandbyFlushGate(_changelog);
            }
        }
    }
}
