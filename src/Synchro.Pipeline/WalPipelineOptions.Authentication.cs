using Npgsql;
using Synchro.Pipeline.Postgres;

namespace Synchro.Pipeline;

// How the pipeline's connections log in and what else their data sources carry (docs/configuration.md#managed-authentication).
public sealed partial class WalPipelineOptions
{
    /// <summary>
    /// Configures the <see cref="NpgsqlDataSourceBuilder"/> of each connection the pipeline opens (TLS, certificates,
    /// type mappings, a physical connection initializer), told which connection it is for. Null: the connection strings as given.
    /// </summary>
    /// <remarks>
    /// <para>
    /// Called for every data source the library builds — the pipeline's pooled source and changelog sessions, the slot and
    /// changelog lock sessions, probes of a multi-host source, the standby source's primary, failover standbys, and those of
    /// <see cref="WalPipeline.CheckAsync"/>, <see cref="WalPipeline.SkipTransactionAsync"/>,
    /// <see cref="WalPipeline.CheckPositionAsync(WalPipelineOptions, CancellationToken)"/> and
    /// <see cref="Maintenance.RuleFailureReplayer"/> — so it may run many times; keep it cheap and free of I/O.
    /// </para>
    /// <para>
    /// The replication connection (<see cref="PipelineConnectionKind.Replication"/>) is opened by Npgsql from a connection
    /// string, not from a data source: it gets what the hook sets on <see cref="NpgsqlDataSourceBuilder.ConnectionStringBuilder"/>
    /// (<c>SslMode</c>, <c>RootCertificate</c>, <c>SslCertificate</c>, <c>SslKey</c>, <c>SslPassword</c>, timeouts), but none of
    /// the builder's callbacks (<c>UseUserCertificateValidationCallback</c>, <c>UseClientCertificate(s)</c>,
    /// <c>UseRootCertificateCallback</c>, <c>UseSslClientAuthenticationOptionsCallback</c>, <c>UsePhysicalConnectionInitializer</c>).
    /// Set a password provider with <see cref="PasswordProvider"/>, not on the builder: one set here for the replication
    /// connection is refused at its first connection, because the walsender would never be given its password.
    /// </para>
    /// </remarks>
    public Action<NpgsqlDataSourceBuilder, PipelineConnectionKind>? ConfigureDataSource { get; set; }

    /// <summary>
    /// Gives the password (or a cloud IAM token: Amazon RDS, Azure Entra ID, Google Cloud SQL) for each new physical
    /// connection the pipeline opens, the replication connection included, given which connection it is and its settings
    /// (host, port, database, user). Null: the connection string's password, <c>Passfile</c> or <c>~/.pgpass</c>.
    /// </summary>
    /// <remarks>
    /// <para>
    /// Called when a connection logs in, not when a pooled one is reused, so a rotated password reaches every connection
    /// as it is next opened (the pipeline reconnects a lost one by itself). It should answer quickly: cache a token and
    /// renew it before it expires (a token generator that signs locally, such as RDS's, needs no cache).
    /// </para>
    /// <para>
    /// An exception it throws names this option: a network or time-out error (<see cref="IOException"/>,
    /// <see cref="HttpRequestException"/>, <see cref="TimeoutException"/>) is waited for and retried like a lost connection;
    /// anything else, or null, stops the pipeline. The connection strings then must not carry a <c>Password</c> or <c>Passfile</c>.
    /// </para>
    /// </remarks>
    public Func<PipelineConnectionKind, NpgsqlConnectionStringBuilder, CancellationToken, ValueTask<string>>? PasswordProvider { get; set; }

    /// <summary>Every connection the library opens for these options comes from here.</summary>
    internal PostgresConnections Connections => new(ConfigureDataSource, PasswordProvider, LoggerFactory);

    private void FindAuthenticationProblems(List<string> problems)
    {
        if (PasswordProvider is null)
            return;
        Check(nameof(ConnectionString), ConnectionString);
        Check(nameof(ChangelogConnectionString), ChangelogConnectionString);
        Check(nameof(PrimaryConnectionString), PrimaryConnectionString);
        for (var i = 0; i < FailoverStandbys.Count; i++)
            Check($"{nameof(FailoverStandbys)}[{i}]", FailoverStandbys[i]);

        void Check(string name, string? connectionString)
        {
            if (string.IsNullOrEmpty(connectionString))
                return;
            NpgsqlConnectionStringBuilder given;
            try
            {
                given = new NpgsqlConnectionStringBuilder(connectionString);
            }
            catch (ArgumentException)
            {
                return;
            }
            if (given.Password is not null || given.Passfile is not null)
            {
                problems.Add($"{name} sets a {(given.Password is not null ? "Password" : "Passfile")} and {nameof(PasswordProvider)} is set; "
                    + "Npgsql takes one or the other: remove it from the connection string, or unset the provider");
            }
        }
    }
}
