using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;
using Synchro.Pipeline.Hosting;
using Synchro.Pipeline;

// The namespace of IServiceCollection, as for every AddXxx of the Microsoft.Extensions libraries:
// the method is found where the container is configured without another using.
namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Runs a <see cref="WalPipeline"/> in a .NET generic host (or any host built on <see cref="IServiceCollection"/>).</summary>
public static class SynchroPipelineServiceCollectionExtensions
{
    /// <summary>
    /// Registers one <see cref="WalPipeline"/> (a singleton), a hosted service that runs it for the
    /// host's lifetime, start-up validation of its options and the <see cref="WalPipelineHealthCheckOptions.CheckName"/>
    /// health check.
    /// </summary>
    /// <param name="services">The container.</param>
    /// <param name="configure">Sets the pipeline's options; runs once, when they are first needed (the host's start-up validation).</param>
    /// <returns>The options builder, to chain more configuration (<c>Configure&lt;TDep&gt;</c>, <c>PostConfigure</c>, <c>Validate</c>).</returns>
    /// <remarks>
    /// <para>
    /// Options are checked when the host starts (<see cref="WalPipelineOptions.Validate"/>): an invalid
    /// option stops start-up with an <see cref="OptionsValidationException"/> whose failures name each
    /// bad option. Unless set, <see cref="WalPipelineOptions.LoggerFactory"/> and
    /// <see cref="WalPipelineOptions.MeterFactory"/> are the container's <c>ILoggerFactory</c> and
    /// <c>IMeterFactory</c> (every generic host and web application registers both).
    /// </para>
    /// <para>
    /// A fatal error (<c>WalPipelineConfigurationException</c>, <see cref="WalPipelineException"/>) ends the
    /// hosted service with that exception: the host logs it and, under the default
    /// <c>BackgroundServiceExceptionBehavior.StopHost</c>, stops; the health check reports it as unhealthy.
    /// The registered pipeline's <see cref="WalPipeline.GetStatus"/> tells afterwards whether it failed.
    /// </para>
    /// <para>
    /// One pipeline per container: calling this again only adds <paramref name="configure"/> to the same options.
    /// </para>
    /// </remarks>
    public static OptionsBuilder<WalPipelineOptions> AddSynchroPipeline(this IServiceCollection services, Action<WalPipelineOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configure);

        var options = services.AddOptions<WalPipelineOptions>().Configure(configure);
        if (services.Any(d => d.ServiceType == typeof(WalPipeline)))
            return options;

        options.ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<WalPipelineOptions>, WalPipelineOptionsValidator>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IPostConfigureOptions<WalPipelineOptions>, WalPipelineContainerDefaults>());
        services.AddSingleton(provider => new WalPipeline(provider.GetRequiredService<IOptions<WalPipelineOptions>>().Value));
        services.AddHostedService<WalPipelineHostedService>();
        services.AddOptions<WalPipelineHealthCheckOptions>().Validate(WalPipelineHealthCheckOptions.IsValid, WalPipelineHealthCheckOptions.ValidRange).ValidateOnStart();
        services.AddHealthChecks().AddCheck<WalPipelineHealthCheck>(
            WalPipelineHealthCheckOptions.CheckName, failureStatus: HealthStatus.Unhealthy, tags: [WalPipelineHealthCheckOptions.Tag]);
        return options;
    }

    /// <summary>
    /// Registers the pipeline as <see cref="AddSynchroPipeline(IServiceCollection, Action{WalPipelineOptions})"/> does,
    /// with its options read from <paramref name="section"/> (usually <c>configuration.GetSection("Synchro")</c>; see
    /// <see cref="WalPipelineConfiguration.Bind"/> for the keys), then <paramref name="configure"/> for what configuration
    /// cannot hold, such as a custom <see cref="WalPipelineOptions.BucketAssigner"/>.
    /// </summary>
    /// <param name="services">The container.</param>
    /// <param name="section">The configuration section holding the pipeline's settings.</param>
    /// <param name="configure">Runs after the section is bound; may be null.</param>
    /// <returns>The options builder.</returns>
    /// <remarks>A bad or unknown key stops host start-up with a <c>WalPipelineConfigurationException</c> naming every such key.</remarks>
    public static OptionsBuilder<WalPipelineOptions> AddSynchroPipeline(this IServiceCollection services, IConfiguration section, Action<WalPipelineOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(section);
        return services.AddSynchroPipeline(options =>
        {
            WalPipelineConfiguration.Bind(section, options);
            configure?.Invoke(options);
        });
    }

    /// <summary>
    /// Adds <paramref name="configure"/> to <see cref="WalPipelineOptions.ConfigureDataSource"/>: it configures the
    /// <c>NpgsqlDataSourceBuilder</c> of each connection the pipeline opens (TLS, certificates, type mappings), after the
    /// hooks added before it.
    /// </summary>
    /// <param name="options">The builder <c>AddSynchroPipeline</c> returned.</param>
    /// <param name="configure">The builder and which connection it is for; called for every data source, so cheap and free of I/O.</param>
    /// <returns>The same options builder.</returns>
    /// <remarks>
    /// A password or token provider belongs in <see cref="UsePasswordProvider"/>, which also reaches the replication
    /// connection; Npgsql opens that one from a connection string, so of this hook it gets only the connection string
    /// settings (<see cref="WalPipelineOptions.ConfigureDataSource"/> lists what does not apply). To use a service of the
    /// container, configure the option with <c>Configure&lt;TDep&gt;</c>.
    /// </remarks>
    public static OptionsBuilder<WalPipelineOptions> ConfigureDataSource(
        this OptionsBuilder<WalPipelineOptions> options, Action<Npgsql.NpgsqlDataSourceBuilder, PipelineConnectionKind> configure)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(configure);
        return options.Configure(o => o.ConfigureDataSource += configure);
    }

    /// <summary>
    /// Sets <see cref="WalPipelineOptions.PasswordProvider"/>, built from the container's services: it gives the password or
    /// token of each new physical connection the pipeline opens, the replication connection included.
    /// </summary>
    /// <param name="options">The builder <c>AddSynchroPipeline</c> returned.</param>
    /// <param name="provider">
    /// Builds the provider once, when the options are first needed, from the container (a <c>TokenCredential</c>, an AWS
    /// credentials provider); the provider gets which connection it is, its settings (host, port, database, user) and a
    /// cancellation token.
    /// </param>
    /// <returns>The same options builder.</returns>
    /// <remarks>The connection strings must then carry no <c>Password</c> or <c>Passfile</c>; start-up validation says so.</remarks>
    public static OptionsBuilder<WalPipelineOptions> UsePasswordProvider(
        this OptionsBuilder<WalPipelineOptions> options,
        Func<IServiceProvider, Func<PipelineConnectionKind, Npgsql.NpgsqlConnectionStringBuilder, CancellationToken, ValueTask<string>>> provider)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(provider);
        return options.Configure<IServiceProvider>((o, services) => o.PasswordProvider = provider(services));
    }
}
