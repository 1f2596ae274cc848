using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using Npgsql.Replication;

namespace Synchro.Pipeline.Postgres;

/// <summary>
/// The one place the library opens PostgreSQL connections: every data source, unpooled session and replication connection
/// is built here, with the application's <see cref="WalPipelineOptions.ConfigureDataSource"/> and
/// <see cref="WalPipelineOptions.PasswordProvider"/> applied (an architecture test keeps it the only place).
/// </summary>
/// <remarks>
/// Npgsql opens a replication connection from a connection string only (<see cref="ReplicationConnection"/> makes its own
/// unpooled connection and takes no data source), so of the configured builder the replication connection gets what the
/// connection string carries — SSL mode, certificate and key files, root certificate file, timeouts — and the password
/// provider is called here, before each replication connection, its answer put into that connection's string. Callbacks set
/// on the builder (certificate validation, client certificates in memory, a password provider of its own) cannot reach it;
/// a password provider set there for <see cref="PipelineConnectionKind.Replication"/> is refused with a message.
/// </remarks>
internal sealed class PostgresConnections(
    Action<NpgsqlDataSourceBuilder, PipelineConnectionKind>? configure,
    Func<PipelineConnectionKind, NpgsqlConnectionStringBuilder, CancellationToken, ValueTask<string>>? passwordProvider,
    ILoggerFactory loggerFactory)
{
    /// <summary>Nothing configured: the connection strings as they are (the CLI, and helpers given only connection strings).</summary>
    public static PostgresConnections Plain { get; } = new(null, null, NullLoggerFactory.Instance);

    /// <summary>A pooled data source for <paramref name="connectionString"/>; the caller disposes it.</summary>
    /// <exception cref="WalPipelineConfigurationException">The hook threw, or left the builder in a state Npgsql refuses.</exception>
    public NpgsqlDataSource DataSource(string connectionString, PipelineConnectionKind kind)
    {
        var builder = new NpgsqlDataSourceBuilder(connectionString);
        builder.UseLoggerFactory(loggerFactory);
        if (passwordProvider is { } provider)
        {
            // Npgsql calls it at every physical connection: a pooled connection reused is not a new login.
            builder.UsePasswordProvider(
                settings => PasswordAsync(provider, kind, settings, CancellationToken.None).AsTask().GetAwaiter().GetResult(),
                (settings, ct) => PasswordAsync(provider, kind, settings, ct));
        }
        Configure(builder, kind);
        try
        {
            return builder.Build();
        }
        catch (Exception e) when (e is NotSupportedException or ArgumentException or InvalidOperationException)
        {
            throw new WalPipelineConfigurationException(
                $"The data source of the {Describe(kind)} could not be built after {nameof(WalPipelineOptions)}.{nameof(WalPipelineOptions.ConfigureDataSource)}: {e.Message} "
                + (passwordProvider is not null
                    ? $"With {nameof(WalPipelineOptions)}.{nameof(WalPipelineOptions.PasswordProvider)} set, the hook must not set a password provider or a password of its own."
                    : "Fix the hook."), e);
        }
    }

    /// <summary>
    /// A data source of unpooled connections, for a session that must end when it is closed (a lock's session, a probe);
    /// the caller disposes it after its connections.
    /// </summary>
    /// <exception cref="WalPipelineConfigurationException">As <see cref="DataSource"/>.</exception>
    public NpgsqlDataSource Unpooled(string connectionString, PipelineConnectionKind kind)
        => DataSource(new NpgsqlConnectionStringBuilder(connectionString) { Pooling = false }.ConnectionString, kind);

    /// <summary>
    /// A logical replication connection (not opened) to the one host <paramref name="connectionString"/> names, with the
    /// hook's connection string settings and, when a provider is set, a password it gave just now.
    /// </summary>
    /// <exception cref="WalPipelineConfigurationException">The hook threw, or set a password provider on the replication builder.</exception>
    /// <exception cref="PasswordProviderException">The password provider threw or returned null.</exception>
    public async Task<LogicalReplicationConnection> ReplicationAsync(string connectionString, CancellationToken cancellationToken)
    {
        var builder = new NpgsqlDataSourceBuilder(connectionString);
        Configure(builder, PipelineConnectionKind.Replication);
        RefuseOwnPasswordProvider(builder);
        var settings = new NpgsqlConnectionStringBuilder(builder.ConnectionStringBuilder.ConnectionString);
        if (passwordProvider is { } provider)
            settings.Password = await PasswordAsync(provider, PipelineConnectionKind.Replication, settings, cancellationToken).ConfigureAwait(false);
        return new LogicalReplicationConnection(settings.ConnectionString);
    }

    private void Configure(NpgsqlDataSourceBuilder builder, PipelineConnectionKind kind)
    {
        if (configure is null)
            return;
        try
        {
            configure(builder, kind);
        }
        catch (Exception e)
        {
            throw new WalPipelineConfigurationException(
                $"{nameof(WalPipelineOptions)}.{nameof(WalPipelineOptions.ConfigureDataSource)} threw for the {Describe(kind)}: {e.GetType().Name}: {e.Message}", e);
        }
    }

    // Npgsql refuses a data source with both a password provider and a password: a probe build with a stand-in password
    // tells whether the hook set a provider, which the replication connection would silently go without.
    private void RefuseOwnPasswordProvider(NpgsqlDataSourceBuilder builder)
    {
        var given = builder.ConnectionStringBuilder;
        if (given.Password is not null || given.Passfile is not null)
            return;
        var probe = new NpgsqlDataSourceBuilder(given.ConnectionString);
        probe.ConnectionStringBuilder.Password = "probe";
        Configure(probe, PipelineConnectionKind.Replication);
        probe.ConnectionStringBuilder.Password = "probe";
        try
        {
            probe.Build().Dispose();
        }
        catch (NotSupportedException e)
        {
            throw new WalPipelineConfigurationException(
                $"{nameof(WalPipelineOptions)}.{nameof(WalPipelineOptions.ConfigureDataSource)} set a password provider for the replication connection, which Npgsql "
                + "opens from a connection string and never asks a data source's provider: the walsender would log in without it. Set "
                + $"{nameof(WalPipelineOptions)}.{nameof(WalPipelineOptions.PasswordProvider)} instead; it is called before every connection, the replication one included. ({e.Message})", e);
        }
    }

    private static async ValueTask<string> PasswordAsync(
        Func<PipelineConnectionKind, NpgsqlConnectionStringBuilder, CancellationToken, ValueTask<string>> provider,
        PipelineConnectionKind kind, NpgsqlConnectionStringBuilder settings, CancellationToken cancellationToken)
    {
        string? password;
        try
        {
            password = await provider(kind, settings, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw;
        }
        catch (Exception e)
        {
            throw new PasswordProviderException(kind, settings, e);
        }
        return password ?? throw new PasswordProviderException(kind, settings, null);
    }

    internal static string Describe(PipelineConnectionKind kind) => kind switch
    {
        PipelineConnectionKind.Source => "source connection",
        PipelineConnectionKind.Changelog => "changelog connection",
        PipelineConnectionKind.Replication => "replication connection",
        PipelineConnectionKind.SlotLock => "slot lock's session",
        PipelineConnectionKind.ChangelogLock => "changelog lock's session",
        PipelineConnectionKind.Primary => "standby source's primary",
        PipelineConnectionKind.Standby => "failover standby",
        _ => kind.ToString(),
    };
}
