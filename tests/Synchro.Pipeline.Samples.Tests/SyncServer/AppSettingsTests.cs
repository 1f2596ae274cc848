using Microsoft.Extensions.Configuration;
using Synchro.Pipeline.Hosting;
using Synchro.Pipeline.Samples.SyncServer;

namespace Synchro.Pipeline.Samples.Tests.SyncServer;

/// <summary>The sample's appsettings.json (copied beside the tests) is a valid configuration for the CLI demo's database.</summary>
public sealed class AppSettingsTests
{
    private static IConfiguration Shipped(params (string Key, string Value)[] overrides) => new ConfigurationBuilder()
        .AddJsonFile(Path.Combine(AppContext.BaseDirectory, "appsettings.json"), optional: false)
        .AddInMemoryCollection(overrides.Select(o => KeyValuePair.Create(o.Key, (string?)o.Value)))
        .Build();

    [Fact]
    public void The_pipeline_settings_bind_and_validate_once_a_connection_string_is_set()
    {
        var options = new WalPipelineOptions();
        WalPipelineConfiguration.Bind(Shipped(("Synchro:ConnectionString", "Host=/tmp/pg;Database=synchro_demo")).GetSection(WalPipelineConfiguration.DefaultSectionName), options);
        options.Validate();
        Assert.Equal("synchro_demo", options.SlotName);
        Assert.Equal("synchro_demo_pub", options.PublicationName);
        Assert.Equal(new[] { "categories", "order_lines", "orders", "users" }, options.Tables.Select(t => t.Name).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void Without_a_connection_string_the_server_says_which_to_set()
    {
        var error = Assert.Throws<InvalidOperationException>(() => SyncServerSettings.Read(Shipped()));
        Assert.Contains("ConnectionStrings__Changelog", error.Message, StringComparison.Ordinal);

        var settings = SyncServerSettings.Read(Shipped(("Synchro:ConnectionString", "Host=source"), ("SyncServer:HostPipeline", "false")));
        Assert.Equal(new SyncServerSettings(false, "Host=source"), settings);
        Assert.Equal("Host=reader", SyncServerSettings.Read(Shipped(("Synchro:ConnectionString", "Host=source"), ("ConnectionStrings:Changelog", "Host=reader"))).ChangelogConnectionString);

        var bad = Assert.Throws<InvalidOperationException>(() => SyncServerSettings.Read(Shipped(("Synchro:ConnectionString", "Host=source"), ("SyncServer:HostPipeline", "yes"))));
        Assert.Contains("SyncServer:HostPipeline must be true or false", bad.Message, StringComparison.Ordinal);
    }
}
