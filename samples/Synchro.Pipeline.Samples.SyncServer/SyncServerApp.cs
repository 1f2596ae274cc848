using Npgsql;
using Synchro.Pipeline.Hosting;
using Synchro.Pipeline.Reading;

namespace Synchro.Pipeline.Samples.SyncServer;

/// <summary>The sync server's services and endpoints, added to a <see cref="WebApplicationBuilder"/> (by Program.cs, and by the tests with their own settings).</summary>
public static class SyncServerApp
{
    /// <summary>The service key of the changelog's <see cref="NpgsqlDataSource"/>, so the application's own data source stays its own.</summary>
    public const string DataSourceKey = "synchro-changelog";

    /// <summary>
    /// Registers the reader (and, unless <c>SyncServer:HostPipeline</c> is false, the pipeline from the <c>Synchro</c>
    /// section), builds the application and maps <c>/sync/changes</c>, <c>/sync/snapshot</c> and <c>/healthz</c>.
    /// </summary>
    public static WebApplication Build(WebApplicationBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var settings = SyncServerSettings.Read(builder.Configuration);

        // Traces, metrics and logs over OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set (samples/README.md).
        builder.AddSyncServerTelemetry();

        if (settings.HostPipeline)
            builder.Services.AddSynchroPipeline(builder.Configuration.GetSection(WalPipelineConfiguration.DefaultSectionName));
        else
            builder.Services.AddHealthChecks();

        builder.Services.AddKeyedSingleton(DataSourceKey, (services, _) => new NpgsqlDataSourceBuilder(settings.ChangelogConnectionString)
            .UseLoggerFactory(services.GetRequiredService<ILoggerFactory>())
            .Build());
        // The reader's defaults (1,000 buckets and 10,000 rows per request at most); the endpoints check requests against them.
        builder.Services.AddSingleton(new ChangelogReaderOptions());
        // One reader per application: it is thread-safe and caches table names.
        builder.Services.AddSingleton(services => new ChangelogReader(
            services.GetRequiredKeyedService<NpgsqlDataSource>(DataSourceKey), services.GetRequiredService<ChangelogReaderOptions>()));

        var app = builder.Build();
        app.MapHealthChecks("/healthz");
        app.MapSyncEndpoints();
        return app;
    }
}
