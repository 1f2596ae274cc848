using Synchro.Pipeline.Compaction;

using static Synchro.Pipeline.Tests.Options.OptionsBinding;

namespace Synchro.Pipeline.Tests.Options;

/// <summary>Compaction's options: the pipeline's schedule and retention (configuration keys, validation) and the compactor's own.</summary>
public sealed class CompactionOptionsTests
{
    [Fact]
    public void Scheduled_compaction_is_off_by_default_and_deletes_are_kept_7_days()
    {
        var options = new WalPipelineOptions();

        Assert.Null(options.CompactionInterval);
        Assert.Equal(TimeSpan.FromDays(7), options.DeleteRetention);
        var compaction = new ChangelogCompactionOptions();
        Assert.Equal(TimeSpan.FromDays(7), compaction.DeleteRetention);
        Assert.Equal(5_000, compaction.ChunkRows);
        Assert.Equal(1_000_000, compaction.MaxTrackedRecords);
        Assert.Empty(compaction.FindProblems());
    }

    [Fact]
    public void Binds_the_compaction_settings()
    {
        var options = Bind(("Synchro:CompactionInterval", "1h"), ("Synchro:DeleteRetention", "3d"));

        Assert.Equal(TimeSpan.FromHours(1), options.CompactionInterval);
        Assert.Equal(TimeSpan.FromDays(3), options.DeleteRetention);
        Assert.Equal(TimeSpan.Zero, Bind(("Synchro:CompactionInterval", "0s")).CompactionInterval);
    }

    [Fact]
    public void Malformed_and_out_of_range_values_name_the_option()
    {
        var error = Assert.Throws<WalPipelineConfigurationException>(() => Bind(("Synchro:DeleteRetention", "7")));
        Assert.Equal(["Synchro:DeleteRetention: '7' is not a duration (a bare number has no unit); write 250ms, 10s, 5m, 1h or 00:00:10"], error.Errors);

        var problems = new WalPipelineOptions { CompactionInterval = TimeSpan.FromMilliseconds(10), DeleteRetention = TimeSpan.FromSeconds(-1) }.FindProblems();
        Assert.Contains("CompactionInterval is 00:00:00.0100000; it must be 0 or unset (off), or between 100 ms and 7 days", problems);
        Assert.Contains("DeleteRetention is -00:00:01; it must be between 0 and 100 years", problems);
        Assert.DoesNotContain(new WalPipelineOptions { CompactionInterval = TimeSpan.Zero }.FindProblems(), p => p.Contains("Compaction", StringComparison.Ordinal));
    }

    [Fact]
    public void The_compactors_options_are_checked_naming_each()
    {
        var options = new ChangelogCompactionOptions { ChunkRows = 0, MaxTrackedRecords = 0, StatementTimeout = TimeSpan.Zero, DeleteRetention = TimeSpan.FromDays(-1), Schema = "" };

        var error = Assert.Throws<ArgumentException>(options.Validate);

        Assert.Equal(
            "Invalid ChangelogCompactionOptions:" + string.Concat(new[]
            {
                "DeleteRetention is -1.00:00:00; it must be between 0 and 100 years",
                "ChunkRows is 0; it must be between 1 and 1,000,000",
                "MaxTrackedRecords is 0; it must be between 1 and 100,000,000",
                "StatementTimeout is 00:00:00; it must be between 1 ms and 1 day",
                "Schema is not a schema name: use 1 to 63 bytes of UTF-8 without NUL, or null for the connection string's",
            }.Select(p => Environment.NewLine + " - " + p)),
            error.Message);
    }
}
