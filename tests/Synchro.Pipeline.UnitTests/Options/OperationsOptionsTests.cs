using Microsoft.Extensions.Configuration;

using static Synchro.Pipeline.Tests.Options.OptionsBinding;

namespace Synchro.Pipeline.Tests.Options;

/// <summary>The operations options: configuration keys and validation messages that name the option.</summary>
public sealed class OperationsOptionsTests
{
    [Fact]
    public void Defaults_keep_heartbeats_at_the_status_interval_and_watch_the_slot_every_10_s()
    {
        var options = new WalPipelineOptions { StatusInterval = TimeSpan.FromSeconds(3) };

        Assert.Null(options.HeartbeatInterval);
        Assert.Equal(TimeSpan.FromSeconds(3), options.EffectiveHeartbeatInterval);
        Assert.Equal(TimeSpan.FromSeconds(10), options.SlotHealthInterval);
        Assert.Null(options.SlotSafeWalSizeWarning);
        Assert.Empty(options.SkipOrigins);
        Assert.Empty(options.MessageHandlers);
    }

    [Fact]
    public void A_start_waits_75_s_for_a_held_slot_by_default_and_the_wait_is_configurable()
    {
        Assert.Equal(TimeSpan.FromSeconds(75), new WalPipelineOptions().SlotWaitTimeout);
        Assert.Equal(TimeSpan.FromSeconds(5), Bind(("Synchro:SlotWaitTimeout", "5s")).SlotWaitTimeout);
        Assert.Equal(TimeSpan.Zero, Bind(("Synchro:SlotWaitTimeout", "0s")).SlotWaitTimeout);

        Assert.Contains("SlotWaitTimeout is -00:00:01; it must be between 0 (no wait) and 1 hour", new WalPipelineOptions { SlotWaitTimeout = TimeSpan.FromSeconds(-1) }.FindProblems());
        Assert.Contains("SlotWaitTimeout is 02:00:00; it must be between 0 (no wait) and 1 hour", new WalPipelineOptions { SlotWaitTimeout = TimeSpan.FromHours(2) }.FindProblems());
        Assert.DoesNotContain(new WalPipelineOptions { SlotWaitTimeout = TimeSpan.Zero }.FindProblems(), p => p.Contains("SlotWaitTimeout", StringComparison.Ordinal));
    }

    [Fact]
    public void Binds_the_operations_settings()
    {
        var options = Bind(
            ("Synchro:HeartbeatInterval", "0s"),
            ("Synchro:SlotHealthInterval", "30s"),
            ("Synchro:SlotSafeWalSizeWarning", "512MiB"),
            ("Synchro:SkipOrigins:0", "other_sync"),
            ("Synchro:SkipOrigins:1", "pg_16384"));

        Assert.Equal(TimeSpan.Zero, options.HeartbeatInterval);
        Assert.Equal(TimeSpan.Zero, options.EffectiveHeartbeatInterval);
        Assert.Equal(TimeSpan.FromSeconds(30), options.SlotHealthInterval);
        Assert.Equal(512L << 20, options.SlotSafeWalSizeWarning);
        Assert.Equal(["other_sync", "pg_16384"], options.SkipOrigins.Order(StringComparer.Ordinal));
    }

    [Fact]
    public void Skip_origins_may_be_one_comma_separated_value_as_an_environment_variable_gives_it()
    {
        var options = Bind(("Synchro:SkipOrigins", "other_sync, replica_b"));

        Assert.Equal(["other_sync", "replica_b"], options.SkipOrigins.Order(StringComparer.Ordinal));
    }

    [Fact]
    public void Malformed_values_name_the_key()
    {
        var error = Assert.Throws<WalPipelineConfigurationException>(() => Bind(
            ("Synchro:HeartbeatInterval", "often"),
            ("Synchro:SlotSafeWalSizeWarning", "lots"),
            ("Synchro:HeartbeatIntervall", "1s")));

        Assert.Equal(
            [
                "Synchro:HeartbeatInterval: 'often' is not a duration; write 250ms, 10s, 5m, 1h or 00:00:10",
                "Synchro:HeartbeatIntervall: unknown setting; did you mean HeartbeatInterval?",
                "Synchro:SlotSafeWalSizeWarning: 'lots' is not a size in bytes; write a whole number of bytes, optionally with KiB, MiB or GiB (8MiB)",
            ],
            error.Errors.Order(StringComparer.Ordinal));
    }

    [Fact]
    public void Out_of_range_values_are_rejected_naming_the_option()
    {
        var options = new WalPipelineOptions
        {
            HeartbeatInterval = TimeSpan.FromMilliseconds(10),
            SlotHealthInterval = TimeSpan.FromHours(2),
            SlotSafeWalSizeWarning = -1,
        };

        var problems = options.FindProblems();

        Assert.Contains("HeartbeatInterval is 00:00:00.0100000; it must be 0 (off) or between 100 ms and 1 hour", problems);
        Assert.Contains("SlotHealthInterval is 02:00:00; it must be 0 (off) or between 100 ms and 1 hour", problems);
        Assert.Contains("SlotSafeWalSizeWarning is -1; it must be 0 or more bytes", problems);
    }
}
