using Npgsql;
using Synchro.Pipeline.Tests.Infrastructure;
using Synchro.Pipeline.Tests.Pipeline;

namespace Synchro.Pipeline.Tests.Decoding;

/// <summary>Transactions written under a skipped replication origin leave no changelog rows but still move the position.</summary>
[Collection(PostgresCollection.Name)]
[Trait(TestCategories.Name, TestCategories.VersionSensitive)]
public sealed class SkipOriginsTests(PostgresServerFixture postgres)
{
    private const string Skipped = "00000000-0000-0000-0000-0000000000c1";
    private const string Kept = "00000000-0000-0000-0000-0000000000c2";
    private const string Plain = "00000000-0000-0000-0000-0000000000c3";
    private const string SkippedLast = "00000000-0000-0000-0000-0000000000c4";

    [Fact]
    public async Task Changes_under_a_skipped_origin_are_left_out_and_other_origins_and_plain_sessions_are_kept()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "skip_origins");
        await harness.ExecuteAsync("SELECT pg_replication_origin_create('other_sync'); SELECT pg_replication_origin_create('kept_origin');");
        var options = harness.Options();
        // Invariant 10: a skipped transaction commits nothing of its own; the position passes it with the next heartbeat.
        options.HeartbeatInterval = TimeSpan.FromSeconds(1);
        options.SkipOrigins.Add("other_sync");
        await harness.StartAsync(options);

        await InsertUnderOriginAsync("other_sync", Skipped, "mallory");
        await InsertUnderOriginAsync("kept_origin", Kept, "kate");
        await harness.ExecuteAsync($"INSERT INTO orders (id, user_id) VALUES ('{Plain}', 'paul')");
        await harness.WaitForChangelogAsync(2);
        var beforeLast = await OperationsSql.PersistedAsync(harness.ConnectionString, harness.Slot);
        await InsertUnderOriginAsync("other_sync", SkippedLast, "mallory");
        var afterLast = await OperationsSql.CurrentWalAsync(harness.ConnectionString);

        // A skipped transaction is still handled: the position moves past its commit.
        await OperationsSql.WaitUntilAsync(async () => await OperationsSql.PersistedAsync(harness.ConnectionString, harness.Slot) >= afterLast,
            "the position to pass the skipped transaction", TimeSpan.FromSeconds(20), harness);
        Assert.True(beforeLast < afterLast);
        Assert.Equal([$"user:kate orders {Kept} 1", $"user:paul orders {Plain} 1"], await harness.ChangelogAsync());
        Assert.Equal(0L, await harness.ScalarAsync<long>($"SELECT count(*) FROM sync_bucket_edges WHERE record_id IN ('{Skipped}', '{SkippedLast}')"));

        async Task InsertUnderOriginAsync(string origin, string id, string user)
        {
            await using var connection = new NpgsqlConnection(harness.ConnectionString);
            await connection.OpenAsync();
            // One statement each: a transaction's origin is the session's origin when it commits.
            foreach (var sql in new[]
            {
                $"SELECT pg_replication_origin_session_setup('{origin}')",
                $"INSERT INTO orders (id, user_id) VALUES ('{id}', '{user}')",
                "SELECT pg_replication_origin_session_reset()",
            })
            {
                await using var command = new NpgsqlCommand(sql, connection);
                await command.ExecuteNonQueryAsync();
            }
        }
    }

    [Fact]
    public void An_origin_name_that_cannot_exist_is_rejected_naming_the_option()
    {
        var options = new WalPipelineOptions();
        options.SkipOrigins.Add("");
        options.SkipOrigins.Add(new string('o', 64));

        var problems = options.FindProblems();

        Assert.Contains("SkipOrigins contains '', which is not a replication origin name: use 1 to 63 bytes, no NUL", problems);
        Assert.Contains($"SkipOrigins contains '{new string('o', 64)}', which is not a replication origin name: use 1 to 63 bytes, no NUL", problems);
    }
}
