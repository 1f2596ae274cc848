using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Synchro.Pipeline.Samples.SyncServer;
using Synchro.Pipeline.Samples.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Synchro.Pipeline.Samples.Tests.SyncServer;

/// <summary>The sample sync server, built by its own <see cref="SyncServerApp.Build"/>, listening on a free loopback port.</summary>
internal sealed class SyncServerHost : IAsyncDisposable
{
    private readonly string _contentRoot;

    private SyncServerHost(WebApplication app, string contentRoot, Uri address)
    {
        App = app;
        _contentRoot = contentRoot;
        Address = address;
    }

    public WebApplication App { get; }

    /// <summary>The server's base address, <c>http://127.0.0.1:port/</c>.</summary>
    public Uri Address { get; }

    /// <summary>The hosted pipeline; null when <c>SyncServer:HostPipeline</c> is false.</summary>
    public WalPipeline? Pipeline => App.Services.GetService<WalPipeline>();

    /// <summary>Starts the server with <paramref name="settings"/> as its whole configuration (the sample's appsettings.json is not read).</summary>
    public static async Task<SyncServerHost> StartAsync(IReadOnlyDictionary<string, string?> settings, ITestOutputHelper output)
    {
        // An empty content root: the appsettings.json beside the test assembly is the demo's, not this test's.
        var contentRoot = Directory.CreateTempSubdirectory("sync-server-").FullName;
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { ContentRootPath = contentRoot, EnvironmentName = "Test" });
        builder.Configuration.AddInMemoryCollection(settings);
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        builder.Logging.AddProvider(new TestOutputLoggerProvider(output));
        var app = SyncServerApp.Build(builder);
        try
        {
            await app.StartAsync();
        }
        catch
        {
            await app.DisposeAsync();
            Directory.Delete(contentRoot, recursive: true);
            throw;
        }
        var address = app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.Single();
        return new SyncServerHost(app, contentRoot, new Uri(address + "/"));
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await App.StopAsync();
        }
        finally
        {
            await App.DisposeAsync();
            Directory.Delete(_contentRoot, recursive: true);
        }
    }
}
