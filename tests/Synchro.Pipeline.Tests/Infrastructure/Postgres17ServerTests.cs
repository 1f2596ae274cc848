using Synchro.Pipeline.Tests.Pipeline;

namespace Synchro.Pipeline.Tests.Infrastructure;

/// <summary>The PostgreSQL 17 server of the <c>postgres17</c> collection runs, and the pipeline streams from it end to end.</summary>
[Collection(Postgres17Collection.Name)]
public sealed class Postgres17ServerTests(Postgres17ServerFixture postgres)
{
    private const string A = "00000000-0000-0000-0000-000000001701";
    private const string B = "00000000-0000-0000-0000-000000001702";
    private const string C = "00000000-0000-0000-0000-000000001703";

    [Fact]
    public async Task The_server_is_postgresql_17_or_newer()
    {
        var connectionString = await postgres.CreateDatabaseAsync("pg17_version");

        Assert.True(postgres.Server.ServerVersion >= 17, $"major version {postgres.Server.ServerVersion}");
        Assert.True(
            await Sql.ScalarAsync<int>(connectionString, "SELECT current_setting('server_version_num')::int") >= 170000,
            "server_version_num >= 170000");
    }

    [Fact]
    public async Task Rows_inserted_into_a_registered_table_reach_the_changelog()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "pg17_pipeline");
        await harness.StartAsync();

        await harness.ExecuteAsync($"INSERT INTO orders (id, user_id) VALUES ('{A}', 'alice'), ('{B}', 'bob')");
        await harness.ExecuteAsync($"INSERT INTO orders (id, user_id) VALUES ('{C}', 'alice')");

        Assert.Equal(
            [$"user:alice orders {A} 1", $"user:bob orders {B} 1", $"user:alice orders {C} 1"],
            await harness.WaitForChangelogAsync(3));
    }
}
