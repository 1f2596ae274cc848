using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Synchro.Pipeline.Hosting;
using Synchro.Pipeline.Registry;

namespace Synchro.Pipeline.Tests.Hosting;

/// <summary>Bad options stop a host before anything connects.</summary>
public sealed class HostingValidationTests
{
    // Nothing listens here; validation never connects.
    private const string Unreachable = "Host=127.0.0.1;Port=1;Database=none;Username=nobody";

    [Fact]
    public async Task Invalid_pipeline_options_fail_host_start_naming_each_option()
    {
        var builder = Builder();
        builder.Services.AddSynchroPipeline(options =>
        {
            Valid(options);
            options.SlotName = "Bad-Slot";
            options.MaxBatchRows = 0;
        });
        using var host = builder.Build();

        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync());

        Assert.Equal(typeof(WalPipelineOptions), error.OptionsType);
        Assert.Equal(2, error.Failures.Count());
        Assert.Contains(error.Failures, f => f.StartsWith("SlotName 'Bad-Slot' is not a valid replication slot name", StringComparison.Ordinal));
        Assert.Contains(error.Failures, f => f.StartsWith("MaxBatchRows is 0", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_second_call_adds_configuration_not_a_second_pipeline()
    {
        var builder = Builder();
        builder.Services.AddSynchroPipeline(Valid);
        builder.Services.AddSynchroPipeline(options => options.StatusInterval = TimeSpan.Zero);
        using var host = builder.Build();

        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync());

        Assert.StartsWith("StatusInterval is 00:00:00", Assert.Single(error.Failures), StringComparison.Ordinal);
        Assert.Single(builder.Services, d => d.ServiceType == typeof(IHostedService) && d.ImplementationType?.Name == "WalPipelineHostedService");
        Assert.Single(host.Services.GetRequiredService<IOptions<HealthCheckServiceOptions>>().Value.Registrations, r => r.Name == WalPipelineHealthCheckOptions.CheckName);
    }

    [Fact]
    public async Task An_invalid_health_threshold_fails_host_start()
    {
        var builder = Builder();
        builder.Services.AddSynchroPipeline(Valid);
        builder.Services.Configure<WalPipelineHealthCheckOptions>(o => o.MaxLag = TimeSpan.Zero);
        using var host = builder.Build();

        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync());

        Assert.Equal(typeof(WalPipelineHealthCheckOptions), error.OptionsType);
        Assert.Contains("MaxLag", Assert.Single(error.Failures), StringComparison.Ordinal);
    }

    [Fact]
    public void Options_bind_from_a_configuration_section_then_the_callback()
    {
        var builder = Builder();
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Synchro:ConnectionString"] = Unreachable,
            ["Synchro:SlotName"] = "from_config",
            ["Synchro:PublicationName"] = "pub",
            ["Synchro:MaxBatchRows"] = "500",
            ["Synchro:Tables:orders:OwnerColumn"] = "user_id",
            ["Synchro:Tables:app.lines:ParentTable"] = "orders",
            ["Synchro:Tables:app.lines:ParentForeignKeyColumn"] = "order_id",
        });
        builder.Services.AddSynchroPipeline(builder.Configuration.GetSection("Synchro"), options => options.MaxBatchRows *= 2);
        using var host = builder.Build();

        var options = host.Services.GetRequiredService<IOptions<WalPipelineOptions>>().Value;

        Assert.Equal("from_config", options.SlotName);
        Assert.Equal(1000, options.MaxBatchRows);
        Assert.Equal(["app.lines", "public.orders"], options.Tables.Select(t => t.QualifiedName).Order());
        Assert.True(options.Tables.TryGet("public", "orders", out var orders));
        Assert.Equal("user_id", orders.OwnerColumn);
    }

    [Fact]
    public async Task A_misspelt_configuration_key_fails_host_start_naming_it()
    {
        var builder = Builder();
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Synchro:ConnectionString"] = Unreachable,
            ["Synchro:SlotNmae"] = "slot",
            ["Synchro:PublicationName"] = "pub",
            ["Synchro:Tables:orders:OwnerColumn"] = "user_id",
        });
        builder.Services.AddSynchroPipeline(builder.Configuration.GetSection("Synchro"));
        using var host = builder.Build();

        var error = await Assert.ThrowsAsync<WalPipelineConfigurationException>(() => host.StartAsync());

        Assert.Contains(error.Errors, e => e.Contains("Synchro:SlotNmae", StringComparison.Ordinal) && e.Contains("SlotName", StringComparison.Ordinal));
    }

    private static void Valid(WalPipelineOptions options)
    {
        options.ConnectionString = Unreachable;
        options.SlotName = "slot";
        options.PublicationName = "pub";
        options.Tables = new TableRegistry().Add(new TableRegistration("orders") { OwnerColumn = "user_id" });
    }

    private static HostApplicationBuilder Builder()
    {
        var builder = Host.CreateApplicationBuilder();
        builder.Logging.ClearProviders();
        return builder;
    }
}
