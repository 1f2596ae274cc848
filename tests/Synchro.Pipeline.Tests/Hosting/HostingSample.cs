using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Synchro.Pipeline.Hosting;
using Synchro.Pipeline.Registry;

namespace Synchro.Pipeline.Tests.Hosting;

/// <summary>The hosting sample of docs/operations.md, line for line, as a method (run by <see cref="HostedPipelineTests"/>).</summary>
internal static class HostingSample
{
    public static async Task<int> RunAsync(string[] args)
    {
        // --- docs/operations.md sample begins (the worker's Program.cs, top-level statements) ---
        var builder = Host.CreateApplicationBuilder(args);
        builder.Services.AddSynchroPipeline(options =>
        {
            options.ConnectionString = builder.Configuration.GetConnectionString("Source") ?? "";  // a role with REPLICATION
            options.SlotName = builder.Configuration["Synchro:SlotName"] ?? "synchro";
            options.PublicationName = "synchro_pub";      // CREATE PUBLICATION synchro_pub FOR TABLE orders;
            options.Tables = new TableRegistry()
                .Add(new TableRegistration("orders") { OwnerColumn = "user_id" });
        });
        // The "synchro-pipeline" check turns unhealthy past 1 minute of lag (default 5 minutes, or 1 GiB of WAL).
        builder.Services.Configure<WalPipelineHealthCheckOptions>(health => health.MaxLag = TimeSpan.FromMinutes(1));

        using var host = builder.Build();
        var pipeline = host.Services.GetRequiredService<WalPipeline>();
        await host.RunAsync();
        // A fatal pipeline error stops the host, but .NET 10's RunAsync returns normally: say so in the exit code.
        return pipeline.GetStatus().State == WalPipelineState.Failed ? 1 : 0;
        // --- docs/operations.md sample ends ---
    }
}
