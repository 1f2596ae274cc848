using System.CommandLine;
using Synchro.Pipeline.Cli.Configuration;

namespace Synchro.Pipeline.Tests.Cli;

/// <summary>
/// The CLI owns its process: read coalescing follows whether its socket completions run inline, and the configuration
/// file, the environment or <c>--no-read-coalescing</c> can still turn it off.
/// </summary>
public sealed class ReadCoalescingSettingsTests
{
    private const string Settings = """{ "Synchro": { "SlotName": "s" } }""";

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Read_coalescing_follows_inline_socket_completions(bool inline)
        => Assert.Equal(inline, Load(inline, Settings).ReadCoalescing);

    [Fact]
    public void The_flag_turns_read_coalescing_off()
        => Assert.False(Load(inline: true, Settings, "--no-read-coalescing").ReadCoalescing);

    [Fact]
    public void The_configuration_file_overrides_the_default_either_way()
    {
        Assert.False(Load(inline: true, """{ "Synchro": { "ReadCoalescing": false } }""").ReadCoalescing);
        Assert.True(Load(inline: false, """{ "Synchro": { "ReadCoalescing": true } }""").ReadCoalescing);
    }

    [Fact]
    public void Only_the_commands_that_take_a_publication_take_the_flag()
    {
        var status = new Command("status");
        _ = new SettingsFlags(status, withPublication: false);
        var run = new Command("run");
        _ = new SettingsFlags(run, withPublication: true);

        Assert.DoesNotContain(status.Options, o => o.Name == "--no-read-coalescing");
        Assert.Contains(run.Options, o => o.Name == "--no-read-coalescing");
    }

    private static WalPipelineOptions Load(bool inline, string json, params string[] flags)
    {
        using var directory = new WorkingDirectory();
        var file = directory.WriteFile(json);
        var command = new Command("run");
        var settings = new SettingsFlags(command, withPublication: true) { InlineSocketCompletions = inline };
        var parse = command.Parse(["--config", file, .. flags]);
        Assert.Empty(parse.Errors);
        return settings.Load(parse).Options;
    }
}
