using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Npgsql;
using Synchro.Pipeline.Registry;

namespace Synchro.Pipeline.Tests.Hosting;

/// <summary>The container's way to set the connection hooks: chained on <c>AddSynchroPipeline</c>, services at hand.</summary>
public sealed class ManagedAuthenticationHostingTests
{
    private sealed record TokenSource(string Token);

    [Fact]
    public async Task ConfigureDataSource_hooks_add_up_and_the_password_provider_is_built_from_the_container()
    {
        var services = new ServiceCollection();
        services.AddSingleton(new TokenSource("iam-token"));
        services.AddSynchroPipeline(options =>
            {
                options.ConnectionString = "Host=db;Username=sync";
                options.SlotName = "s";
                options.PublicationName = "p";
                options.Tables = new TableRegistry().Add(new TableRegistration("orders") { OwnerColumn = "user_id" });
            })
            .ConfigureDataSource((builder, _) => builder.ConnectionStringBuilder.SslMode = SslMode.VerifyFull)
            .ConfigureDataSource((builder, kind) => builder.ConnectionStringBuilder.ApplicationName = $"sync-{kind}")
            .UsePasswordProvider(provider =>
            {
                var tokens = provider.GetRequiredService<TokenSource>();
                return (kind, settings, _) => ValueTask.FromResult($"{tokens.Token}:{kind}:{settings.Username}");
            });
        await using var container = services.BuildServiceProvider();

        var options = container.GetRequiredService<IOptions<WalPipelineOptions>>().Value;

        var builder = new NpgsqlDataSourceBuilder(options.ConnectionString);
        options.ConfigureDataSource!(builder, PipelineConnectionKind.ChangelogLock);
        Assert.Equal(SslMode.VerifyFull, builder.ConnectionStringBuilder.SslMode);
        Assert.Equal("sync-ChangelogLock", builder.ConnectionStringBuilder.ApplicationName);
        Assert.Equal("iam-token:Replication:sync",
            await options.PasswordProvider!(PipelineConnectionKind.Replication, new NpgsqlConnectionStringBuilder(options.ConnectionString), CancellationToken.None));
        Assert.NotNull(container.GetRequiredService<WalPipeline>());
    }
}
