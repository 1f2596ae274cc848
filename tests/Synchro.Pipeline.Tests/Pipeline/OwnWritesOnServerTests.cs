using Synchro.Pipeline.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Synchro.Pipeline.Tests.Pipeline;

/// <summary>
/// Invariant 10 on PostgreSQL 16+: with <see cref="WalPipelineOptions.FilterOriginsOnServer"/> the server drops the
/// pipeline's own changelog writes before decoding them (pgoutput <c>origin 'none'</c>), so a publication that covers
/// the sidecar tables costs the walsender nothing for them; without it they are decoded, sent, and left out by the pipeline.
/// </summary>
[Collection(Postgres17Collection.Name)]
public sealed class OwnWritesOnServerTests(Postgres17ServerFixture postgres, ITestOutputHelper output)
{
    private const int Rows = 5001;

    [Fact]
    public async Task With_the_server_filter_the_walsender_never_decodes_the_changelog_writes()
    {
        var (filteredTransactions, filteredBytes) = await DecodeAsync("own_writes_filtered", filterOnServer: true);
        var (plainTransactions, plainBytes) = await DecodeAsync("own_writes_plain", filterOnServer: false);

        output.WriteLine($"origin 'none': {filteredTransactions} transactions, {filteredBytes} bytes decoded; without: {plainTransactions} transactions, {plainBytes} bytes");
        // The source transaction is decoded either way; the changelog writes (its 5,001 rows and their edges) only without the filter.
        Assert.True(filteredBytes * 2 < plainBytes, $"the filter saved too little: {filteredBytes} against {plainBytes} bytes");
        Assert.True(filteredTransactions < plainTransactions, $"{filteredTransactions} transactions decoded with the filter, {plainTransactions} without");
    }

    [Fact]
    public async Task With_the_server_filter_other_origins_are_left_out_too_and_plain_sessions_are_kept()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "own_writes_other_origin");
        await harness.ExecuteAsync("SELECT pg_replication_origin_create('subscription_like')");
        var options = harness.Options();
        options.FilterOriginsOnServer = true;
        await harness.StartAsync(options);

        await harness.ExecuteAsync("""
            SELECT pg_replication_origin_session_setup('subscription_like');
            INSERT INTO orders (id, user_id) VALUES ('00000000-0000-0000-0000-0000000017a1', 'replicated');
            SELECT pg_replication_origin_session_reset();
            """);
        await harness.ExecuteAsync("INSERT INTO orders (id, user_id) VALUES ('00000000-0000-0000-0000-0000000017a2', 'local')");

        Assert.Equal(["user:local orders 00000000-0000-0000-0000-0000000017a2 1"], await harness.WaitForChangelogAsync(1));
    }

    /// <summary>Writes one source transaction of <see cref="Rows"/> rows; returns what the slot's walsender decoded meanwhile.</summary>
    private async Task<(long Transactions, long Bytes)> DecodeAsync(string name, bool filterOnServer)
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, name);
        await harness.ExecuteAsync($"DROP PUBLICATION {PipelineHarness.Publication}; CREATE PUBLICATION {PipelineHarness.Publication} FOR ALL TABLES");
        var options = harness.Options();
        options.FilterOriginsOnServer = filterOnServer;
        options.HeartbeatInterval = TimeSpan.FromSeconds(1);
        await harness.StartAsync(options);
        await harness.WaitUntilCaughtUpAsync();
        var before = await StatsAsync(harness);

        await harness.ExecuteAsync($"INSERT INTO orders (id, user_id) SELECT gen_random_uuid(), 'u' || (n % 7) FROM generate_series(1, {Rows}) n");
        await harness.WaitForChangelogAsync(Rows, TimeSpan.FromSeconds(60));
        // The changelog commit comes back through the stream (or not) before a heartbeat written after it.
        await harness.WaitUntilCaughtUpAsync();
        var after = await StatsAsync(harness);
        return (after.Transactions - before.Transactions, after.Bytes - before.Bytes);
    }

    private static async Task<(long Transactions, long Bytes)> StatsAsync(PipelineHarness harness)
    {
        var row = await Sql.RowsAsync(harness.ConnectionString,
            $"SELECT total_txns || ' ' || total_bytes FROM pg_stat_replication_slots WHERE slot_name = '{harness.Slot}'");
        var parts = Assert.Single(row).Split(' ');
        return (long.Parse(parts[0], System.Globalization.CultureInfo.InvariantCulture), long.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture));
    }
}
