using System.Reflection;
using Synchro.Pipeline.Cli;

namespace Synchro.Pipeline.Tests.Cli;

/// <summary>What every command answers the same way: <c>--version</c>, and <c>-c</c> for <c>--config</c>.</summary>
public sealed class CommandLineTests
{
    private static readonly string s_version =
        typeof(ExitCodes).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()!.InformationalVersion;

    [Theory]
    [InlineData]
    [InlineData("demo")]
    [InlineData("run")]
    [InlineData("migrate")]
    [InlineData("status")]
    [InlineData("check")]
    [InlineData("replay-failures")]
    [InlineData("compact")]
    [InlineData("skip")]
    public async Task Every_command_prints_the_informational_version(params string[] command)
    {
        var result = await CliProcess.RunAsync([.. command, "--version"]);

        Assert.True(result.ExitCode == ExitCodes.Ok, result.ToString());
        Assert.Equal(s_version, result.Output.Trim());
    }

    [Fact]
    public async Task Minus_c_is_never_the_demo_clients()
    {
        var result = await CliProcess.RunAsync("demo", "-c", "3");

        Assert.True(result.ExitCode == ExitCodes.Usage, result.ToString());
        Assert.Contains("-c", result.Error, StringComparison.Ordinal);
        Assert.DoesNotContain("started", result.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Minus_c_is_the_configuration_file()
    {
        var result = await CliProcess.RunAsync("check", "-c", "missing.json");

        Assert.True(result.ExitCode == ExitCodes.Configuration, result.ToString());
        Assert.Contains("missing.json does not exist (--config)", result.Error, StringComparison.Ordinal);
    }
}
