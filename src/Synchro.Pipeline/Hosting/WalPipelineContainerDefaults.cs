using System.Diagnostics.Metrics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Synchro.Pipeline.Hosting;

/// <summary>
/// Gives the pipeline the container's logging and metrics unless the application set its own. A post-configure
/// step, so it sees every <c>Configure</c> whatever the registration order.
/// </summary>
/// <remarks>
/// <c>IMeterFactory</c> is optional: generic hosts register it (<c>AddMetrics</c>), and a bare container without
/// it leaves the pipeline its own meter. Registering it here would pull Microsoft.Extensions.Diagnostics and, with
/// it, the configuration binder into every consumer of the library.
/// </remarks>
internal sealed class WalPipelineContainerDefaults(ILoggerFactory? loggerFactory = null, IMeterFactory? meterFactory = null)
    : IPostConfigureOptions<WalPipelineOptions>
{
    public void PostConfigure(string? name, WalPipelineOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (loggerFactory is not null && (options.LoggerFactory is null || ReferenceEquals(options.LoggerFactory, NullLoggerFactory.Instance)))
            options.LoggerFactory = loggerFactory;
        options.MeterFactory ??= meterFactory;
    }
}
