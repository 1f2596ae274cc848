using Microsoft.Extensions.Configuration;
using Synchro.Pipeline.Hosting;

namespace Synchro.Pipeline.Tests.Hosting;

/// <summary>The <c>InitialSnapshot</c> setting: on unless configured off, and only as a boolean.</summary>
public sealed class InitialSnapshotConfigurationTests
{
    private static IConfigurationSection Section(params (string Key, string? Value)[] settings)
        => new ConfigurationBuilder()
            .AddInMemoryCollection(settings.Select(s => new KeyValuePair<string, string?>(s.Key, s.Value)))
            .Build()
            .GetSection(WalPipelineConfiguration.DefaultSectionName);

    [Theory]
    [InlineData(null, true)]
    [InlineData("false", false)]
    [InlineData("False", false)]
    [InlineData("true", true)]
    public void InitialSnapshot_is_on_by_default_and_binds_a_boolean(string? value, bool expected)
    {
        var options = new WalPipelineOptions();
        WalPipelineConfiguration.Bind(Section(value is null ? [("Synchro:SlotName", "s")] : [("synchro:initialsnapshot", value)]), options);
        Assert.Equal(expected, options.InitialSnapshot);
    }

    [Fact]
    public void A_value_that_is_not_a_boolean_is_named_with_its_key_path()
    {
        var error = Assert.Throws<WalPipelineConfigurationException>(() => WalPipelineConfiguration.Bind(Section(("Synchro:InitialSnapshot", "skip")), new WalPipelineOptions()));
        Assert.Equal(["Synchro:InitialSnapshot: 'skip' is not true or false"], error.Errors);
    }
}
