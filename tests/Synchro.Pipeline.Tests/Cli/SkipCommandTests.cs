using Synchro.Pipeline.Tests.Infrastructure;
using Synchro.Pipeline.Tests.Pipeline;

namespace Synchro.Pipeline.Tests.Cli;

/// <summary><c>synchro-pipeline skip --lsn</c>: records the one-shot request, refuses a position that is no LSN or already passed.</summary>
[Collection(PostgresCollection.Name)]
public sealed class SkipCommandTests(PostgresServerFixture postgres)
{
    [Fact]
    public async Task Skip_records_the_request_and_refuses_what_cannot_be_skipped()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "cli_skip");
        await harness.StartAsync();
        await harness.ExecuteAsync("INSERT INTO categories VALUES (1, 'a')");
        await harness.WaitForChangelogAsync(1);
        await harness.StopAsync();
        string[] settings = ["--connection", harness.ConnectionString, "--slot", harness.Slot];

        var notAnLsn = await CliProcess.RunAsync(["skip", "--lsn", "yesterday", .. settings]);
        Assert.True(notAnLsn.ExitCode == 3, notAnLsn.ToString());
        Assert.Contains("--lsn 'yesterday' is not a position", notAnLsn.Error, StringComparison.Ordinal);

        var passed = await CliProcess.RunAsync(["skip", "--lsn", "0/1", .. settings]);
        Assert.True(passed.ExitCode == 3, passed.ToString());
        Assert.Contains("is already past 0/1", passed.Error, StringComparison.Ordinal);

        var ahead = await CliProcess.RunAsync(["skip", "--lsn", "FF/0", .. settings]);
        Assert.True(ahead.ExitCode == 0, ahead.ToString());
        Assert.Contains("the transaction committed at FF/0 will be skipped", ahead.Output, StringComparison.Ordinal);
        var stored = await harness.ScalarAsync<long>($"SELECT commit_lsn FROM sync_transaction_skips WHERE slot_name = '{harness.Slot}'");
        Assert.Equal("FF/0", new Synchro.Pipeline.Protocol.Lsn((ulong)stored).ToString());
    }
}
