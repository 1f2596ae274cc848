using Microsoft.Extensions.Configuration;
using Synchro.Pipeline.Hosting;

namespace Synchro.Pipeline.Tests.Options;

/// <summary>Binds settings given as configuration keys the way a host does.</summary>
internal static class OptionsBinding
{
    /// <summary>New options bound from <paramref name="settings"/> (keys under <see cref="WalPipelineConfiguration.DefaultSectionName"/>).</summary>
    public static WalPipelineOptions Bind(params (string Key, string? Value)[] settings)
    {
        var section = new ConfigurationBuilder()
            .AddInMemoryCollection(settings.Select(s => new KeyValuePair<string, string?>(s.Key, s.Value)))
            .Build()
            .GetSection(WalPipelineConfiguration.DefaultSectionName);
        var options = new WalPipelineOptions();
        WalPipelineConfiguration.Bind(section, options);
        return options;
    }
}
