using Npgsql;

namespace Synchro.Pipeline.Replication;

/// <summary>
/// The one server a replication connection opens. Npgsql refuses replication connections over several hosts, so for a
/// multi-host connection string (<c>Host=a:5432,b:5432;Target Session Attributes=primary</c>) a normal connection picks the
/// host as the string asks, and the replication connection goes to that host alone. Every run resolves again, so a run
/// after a failover reaches the promoted server.
/// </summary>
internal static class ReplicationHost
{
    /// <summary>Whether <paramref name="connectionString"/> names several hosts.</summary>
    public static bool IsMultiHost(string connectionString)
        => new NpgsqlConnectionStringBuilder(connectionString).Host?.Contains(',', StringComparison.Ordinal) == true;

    /// <summary>
    /// <paramref name="connectionString"/> when it names one host; otherwise the same string naming only the host a normal
    /// connection of it reaches now (<c>Target Session Attributes</c> honoured), with its port.
    /// </summary>
    /// <exception cref="NpgsqlException">No host could be reached, or none is of the kind asked for.</exception>
    public static async Task<string> ResolveAsync(string connectionString, CancellationToken cancellationToken)
    {
        if (!IsMultiHost(connectionString))
            return connectionString;
        var builder = new NpgsqlConnectionStringBuilder(connectionString);
        // Unpooled, with no remembered host states: the answer must be the servers' as they are now, not as they were
        // before a promotion (Npgsql otherwise trusts a host's last known role for Host Recheck Seconds).
        var probe = new NpgsqlConnectionStringBuilder(connectionString) { Pooling = false, HostRecheckSeconds = 0 };
        var connection = new NpgsqlConnection(probe.ConnectionString);
        await using (connection.ConfigureAwait(false))
        {
            await connection.OpenAsync(cancellationToken).ConfigureAwait(false);
            builder.Host = connection.Host;
            builder.Port = connection.Port;
        }
        builder.Remove("Target Session Attributes");
        builder.Remove("Load Balance Hosts");
        builder.Remove("Host Recheck Seconds");
        return builder.ConnectionString;
    }
}
