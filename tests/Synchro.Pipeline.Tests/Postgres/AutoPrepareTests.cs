using Npgsql;
using Synchro.Pipeline.Postgres;
using Synchro.Pipeline.Tests.Infrastructure;

namespace Synchro.Pipeline.Tests.Postgres;

/// <summary>The pipeline's sessions prepare the statements they repeat, unless the connection string says otherwise.</summary>
[Collection(PostgresCollection.Name)]
public sealed class AutoPrepareTests(PostgresServerFixture postgres)
{
    [Fact]
    public async Task A_statement_run_repeatedly_is_prepared_on_the_session()
    {
        var connectionString = await postgres.CreateDatabaseAsync("auto_prepare");
        await using var source = PostgresConnections.Plain.Unpooled(connectionString, PipelineConnectionKind.ChangelogLock);
        await using var connection = await source.OpenConnectionAsync();

        for (var i = 0; i < 8; i++)
        {
            await using var command = new NpgsqlCommand("SELECT $1::int + 1", connection) { Parameters = { new NpgsqlParameter<int> { TypedValue = i } } };
            Assert.Equal(i + 1, await command.ExecuteScalarAsync());
        }

        await using var prepared = new NpgsqlCommand("SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE 'SELECT $1::int + 1%'", connection);
        Assert.Equal(1L, await prepared.ExecuteScalarAsync());
    }

    [Theory]
    [InlineData("Host=h;Username=u", PostgresConnections.MaxAutoPrepare)]
    [InlineData("Host=h;Username=u;Max Auto Prepare=0", 0)]
    [InlineData("Host=h;maxautoprepare=5;Username=u", 5)]
    public void The_connection_string_decides_when_it_sets_it(string connectionString, int expected)
    {
        using var source = PostgresConnections.Plain.DataSource(connectionString, PipelineConnectionKind.Source);
        Assert.Equal(expected, new NpgsqlConnectionStringBuilder(source.ConnectionString).MaxAutoPrepare);
    }
}
