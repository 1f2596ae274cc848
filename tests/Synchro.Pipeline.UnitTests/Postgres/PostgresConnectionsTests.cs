using Npgsql;
using Synchro.Pipeline.Postgres;
using Synchro.Pipeline.Registry;

namespace Synchro.Pipeline.Tests.Postgres;

public sealed class PostgresConnectionsTests
{
    private static WalPipelineOptions Options(string connectionString = "Host=localhost;Username=sync") => new()
    {
        ConnectionString = connectionString,
        SlotName = "s",
        PublicationName = "p",
        Tables = new TableRegistry().Add(new TableRegistration("orders") { OwnerColumn = "user_id" }),
    };

    [Fact]
    public void The_hook_is_applied_to_every_data_source_and_told_which_connection_it_is_for()
    {
        var seen = new List<PipelineConnectionKind>();
        var options = Options();
        options.ConfigureDataSource = (builder, kind) =>
        {
            seen.Add(kind);
            builder.ConnectionStringBuilder.ApplicationName = $"app-{kind}";
        };

        using var source = options.Connections.DataSource(options.ConnectionString, PipelineConnectionKind.Source);
        using var locks = options.Connections.Unpooled(options.ConnectionString, PipelineConnectionKind.SlotLock);

        Assert.Equal([PipelineConnectionKind.Source, PipelineConnectionKind.SlotLock], seen);
        Assert.Equal("app-Source", new NpgsqlConnectionStringBuilder(source.ConnectionString).ApplicationName);
        Assert.False(new NpgsqlConnectionStringBuilder(locks.ConnectionString).Pooling);
    }

    [Fact]
    public async Task The_replication_connection_gets_the_hooks_connection_string_settings_and_the_providers_password()
    {
        var options = Options();
        options.ConfigureDataSource = (builder, _) => builder.ConnectionStringBuilder.SslMode = SslMode.VerifyFull;
        options.PasswordProvider = (kind, settings, _) => ValueTask.FromResult($"token-for-{kind}-{settings.Username}");

        await using var replication = await options.Connections.ReplicationAsync(options.ConnectionString, CancellationToken.None);

        var settings = new NpgsqlConnectionStringBuilder(replication.ConnectionString);
        Assert.Equal(SslMode.VerifyFull, settings.SslMode);
        Assert.Equal("token-for-Replication-sync", settings.Password);
    }

    [Fact]
    public void A_hook_that_throws_is_named()
    {
        var options = Options();
        options.ConfigureDataSource = (_, kind) => throw new InvalidOperationException($"no certificate for {kind}");

        var error = Assert.Throws<WalPipelineConfigurationException>(() => new WalPipeline(options));

        Assert.Contains("WalPipelineOptions.ConfigureDataSource threw for the source connection: InvalidOperationException: no certificate for Source", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_provider_that_throws_or_returns_null_is_named_with_the_connection_it_was_asked_for()
    {
        var settings = new NpgsqlConnectionStringBuilder("Host=db.example;Port=5433;Database=app;Username=sync");

        var thrown = new PasswordProviderException(PipelineConnectionKind.SlotLock, settings, new InvalidOperationException("expired credentials"));
        var none = new PasswordProviderException(PipelineConnectionKind.Replication, settings, null);

        Assert.Equal("WalPipelineOptions.PasswordProvider threw InvalidOperationException: expired credentials (asked for the password of the slot lock's session "
            + "to db.example:5433/app as sync). Fix the provider: it is called before every new physical connection and must return the current password or token.", thrown.Message);
        Assert.StartsWith("WalPipelineOptions.PasswordProvider returned null (asked for the password of the replication connection", none.Message, StringComparison.Ordinal);
        Assert.False(thrown.IsTransient);
        Assert.False(PostgresErrors.IsConnectionLoss(new NpgsqlException("An exception was thrown from the password provider", thrown)));
    }

    [Fact]
    public void A_provider_whose_token_endpoint_is_unreachable_is_waited_for_like_a_lost_connection()
    {
        var settings = new NpgsqlConnectionStringBuilder("Host=db;Username=sync");
        var unreachable = new PasswordProviderException(PipelineConnectionKind.Source, settings, new HttpRequestException("connection refused (169.254.169.254:80)"));

        Assert.True(unreachable.IsTransient);
        Assert.True(PostgresErrors.IsConnectionLoss(new NpgsqlException("An exception was thrown from the password provider", unreachable)));
        Assert.True(PostgresErrors.IsConnectionLoss(unreachable));
    }

    [Theory]
    [InlineData("Host=db;Username=sync;Password=secret", "ConnectionString sets a Password")]
    [InlineData("Host=db;Username=sync;Passfile=/run/pgpass", "ConnectionString sets a Passfile")]
    public void A_provider_and_a_password_in_a_connection_string_are_refused_together(string connectionString, string expected)
    {
        var options = Options(connectionString);
        options.PasswordProvider = (_, _, _) => ValueTask.FromResult("token");

        var error = Assert.Throws<ArgumentException>(options.Validate);

        Assert.Contains(expected + " and PasswordProvider is set", error.Message, StringComparison.Ordinal);
    }
}
