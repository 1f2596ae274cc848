using Synchro.Pipeline.LoadHarness;

namespace Synchro.Pipeline.Tests.Bench;

/// <summary>The harness's catch-up flags for full-page-image runs: the prefill, the checkpoint loop and the server settings.</summary>
public sealed class HarnessOptionsTests
{
    [Fact]
    public void Server_settings_repeat_in_order_split_at_the_first_equals_sign_and_reach_the_server_options()
    {
        var options = HarnessOptions.Parse(["--server-setting", "wal_compression=lz4", "--prefill-changelog", "1000000", "--checkpoint-every", "5",
            "--server-setting", "max_wal_size=96MB", "--server-setting", "search_path=a=b"]);

        Assert.Equal(1_000_000, options.PrefillChangelog);
        Assert.Equal(5, options.CheckpointEverySeconds);
        Assert.Equal([new("wal_compression", "lz4"), new("max_wal_size", "96MB"), new("search_path", "a=b")], options.ServerSettings);
        var server = HarnessRunner.ServerOptions(options).Settings;
        Assert.Equal("96MB", server["max_wal_size"]);
        Assert.Equal("lz4", server["wal_compression"]);
        Assert.Equal("30min", server["checkpoint_timeout"]);
        Assert.Contains(" --prefill-changelog 1000000 --checkpoint-every 5 --server-setting wal_compression=lz4 --server-setting max_wal_size=96MB", options.CommandLine());
    }

    [Theory]
    [InlineData("--server-setting", "wal_compression")]
    [InlineData("--server-setting", "=lz4")]
    [InlineData("--checkpoint-every", "0")]
    [InlineData("--prefill-changelog", "-1")]
    public void A_bad_value_is_refused(string flag, string value)
        => Assert.Throws<FormatException>(() => HarnessOptions.Parse([flag, value]));
}
