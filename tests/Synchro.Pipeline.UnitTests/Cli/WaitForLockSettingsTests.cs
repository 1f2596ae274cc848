using System.CommandLine;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Synchro.Pipeline.Cli;
using Synchro.Pipeline.Cli.Configuration;
using Synchro.Pipeline.Hosting;

using static Synchro.Pipeline.Tests.Options.OptionsBinding;

namespace Synchro.Pipeline.Tests.Cli;

/// <summary>WaitForLock: off by default; on from the configuration key, the environment's layer or <c>run --wait-for-lock</c>; a waiting instance is healthy.</summary>
public sealed class WaitForLockSettingsTests
{
    private const string Settings = """{ "Synchro": { "SlotName": "s" } }""";

    [Fact]
    public void Off_by_default_and_on_from_the_configuration_key()
    {
        Assert.False(new WalPipelineOptions().WaitForLock);
        Assert.False(Load(Settings).WaitForLock);
        Assert.True(Load("""{ "Synchro": { "WaitForLock": true } }""").WaitForLock);
        Assert.True(Bind(("Synchro:WaitForLock", "true")).WaitForLock);
        Assert.False(Bind(("Synchro:WaitForLock", "false")).WaitForLock);
    }

    [Fact]
    public void Run_takes_the_flag_and_it_turns_the_wait_on()
    {
        Assert.Contains(RunCommand.Create().Options, o => o.Name == "--wait-for-lock");
        Assert.True(Load(Settings, "--wait-for-lock").WaitForLock);
        Assert.True(Load("""{ "Synchro": { "WaitForLock": false } }""", "--wait-for-lock").WaitForLock);
    }

    [Fact]
    public void A_bad_value_names_the_key()
    {
        var error = Assert.Throws<WalPipelineConfigurationException>(() => Bind(("Synchro:WaitForLock", "sometimes")));
        Assert.Contains("WaitForLock", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_waiting_instance_is_healthy_and_named_so_an_orchestrator_neither_restarts_it_nor_stalls_a_rollout_on_it()
    {
        // Waiting for hours is no retry episode: the retry limits do not apply.
        var status = new WalPipelineStatus { State = WalPipelineState.WaitingForLock, LockHolder = "the slot lock of another pipeline (backend pid 42)" };
        var limits = new WalPipelineHealthCheckOptions { MaxRetryDuration = TimeSpan.FromSeconds(1), MaxRetryAttempts = 1 };

        var health = WalPipelineHealthCheck.Evaluate(status, limits, HealthStatus.Unhealthy);

        Assert.Equal(HealthStatus.Healthy, health.Status);
        Assert.Equal("Waiting to take over (WaitForLock): another instance is active and holds the slot lock of another pipeline (backend pid 42); this one holds no lock and writes nothing until it lets go.", health.Description);
        Assert.Equal("WaitingForLock", health.Data["state"]);
        Assert.Equal("the slot lock of another pipeline (backend pid 42)", health.Data["lock_holder"]);
    }

    private static WalPipelineOptions Load(string json, params string[] flags)
    {
        using var directory = new WorkingDirectory();
        var file = directory.WriteFile(json);
        var command = new Command("run");
        var settings = new SettingsFlags(command, withPublication: true);
        settings.AddSwitch(new Option<bool>("--wait-for-lock"), nameof(WalPipelineOptions.WaitForLock));
        var parse = command.Parse(["--config", file, .. flags]);
        Assert.Empty(parse.Errors);
        return settings.Load(parse).Options;
    }
}
