using Microsoft.Extensions.Hosting;

namespace Synchro.Pipeline.Hosting;

/// <summary>Runs the container's <see cref="WalPipeline"/> from host start to host stop.</summary>
/// <remarks>
/// A fatal error is not caught: the pipeline has logged it (event 1005 or 1007, critical), and the host logs
/// the faulted service and, under the default <c>BackgroundServiceExceptionBehavior.StopHost</c>, stops. Host stop
/// cancels the run: the batch in flight is finished (or rolled back past a 5 s grace), never half-written.
/// </remarks>
internal sealed class WalPipelineHostedService(WalPipeline pipeline) : BackgroundService
{
    protected override Task ExecuteAsync(CancellationToken stoppingToken) => pipeline.RunAsync(stoppingToken);
}
