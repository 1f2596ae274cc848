using Npgsql;
using Synchro.Pipeline.Postgres;

namespace Synchro.Pipeline.Replication;

/// <summary>
/// The one server a replication connection opens. Npgsql refuses replication connections over several hosts, so for a
/// multi-host connection string (<c>Host=a:5432,b:5432;Target Session Attributes=primary</c>) a normal connection picks the
/// host as the string asks, and the replication connection goes to that host alone. Every run resolves again, so a run
/// after a failover reaches the promoted server.
/// </summary>
internal static class ReplicationHost
{
    // Npgsql trusts a host's last known role (primary or standby) this long; its default, 10 s, would keep a promoted
    // standby "a standby" for that long after the promotion.
    private const int HostRecheckSeconds = 1;

    /// <summary>
    /// <paramref name="connectionString"/>, with <c>Host Recheck Seconds</c> at 1 when it names several hosts and does not set it,
    /// so that every session finds a promoted standby within a second of the promotion.
    /// </summary>
    public static string WithPromptRecheck(string connectionString)
    {
        if (!IsMultiHost(connectionString))
            return connectionString;
        var given = new System.Data.Common.DbConnectionStringBuilder { ConnectionString = connectionString };
        if (given.ContainsKey("Host Recheck Seconds") || given.ContainsKey("HostRecheckSeconds"))
            return connectionString;
        return new NpgsqlConnectionStringBuilder(connectionString) { HostRecheckSeconds = HostRecheckSeconds }.ConnectionString;
    }

    /// <summary>Whether <paramref name="connectionString"/> names several hosts.</summary>
    public static bool IsMultiHost(string connectionString)
        => new NpgsqlConnectionStringBuilder(connectionString).Host?.Contains(',', StringComparison.Ordinal) == true;

    /// <summary>
    /// <paramref name="connectionString"/> when it names one host; otherwise the same string naming only the host a normal
    /// connection of it reaches now (<c>Target Session Attributes</c> honoured), with its port.
    /// </summary>
    /// <exception cref="NpgsqlException">No host could be reached, or none is of the kind asked for.</exception>
    public static async Task<string> ResolveAsync(PostgresConnections connections, string connectionString, CancellationToken cancellationToken)
    {
        if (!IsMultiHost(connectionString))
            return connectionString;
        var builder = new NpgsqlConnectionStringBuilder(connectionString);
        // Unpooled, with no remembered host states: the answer must be the servers' as they are now, not as they were
        // before a promotion (Npgsql otherwise trusts a host's last known role for Host Recheck Seconds).
        var probe = new NpgsqlConnectionStringBuilder(connectionString) { Pooling = false, HostRecheckSeconds = 0 };
        var probes = connections.DataSource(probe.ConnectionString, PipelineConnectionKind.Source);
        await using (probes.ConfigureAwait(false))
        {
            var connection = await probes.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
            await using var opened = connection.ConfigureAwait(false);
            builder.Host = connection.Host;
            builder.Port = connection.Port;
        }
        builder.Remove("Target Session Attributes");
        builder.Remove("Load Balance Hosts");
                return builder.ConnectionString;
    }
}
