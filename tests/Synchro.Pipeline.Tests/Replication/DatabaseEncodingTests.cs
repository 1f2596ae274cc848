using Synchro.Pipeline.Registry;
using Synchro.Pipeline.Tests.Infrastructure;

namespace Synchro.Pipeline.Tests.Replication;

/// <summary>
/// Invariant 7 for bytes that are not UTF-8: a SQL_ASCII database stores any bytes unchecked, so the pipeline refuses a
/// source or changelog database that is not UTF8, at start and in <c>check</c>, saying how to move to one.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class DatabaseEncodingTests(PostgresServerFixture postgres)
{
    [Fact]
    public async Task A_SQL_ASCII_source_database_is_refused_by_check_and_at_start()
    {
        var source = await CreateDatabaseAsync("encoding_source", "SQL_ASCII");
        await Sql.ExecuteAsync(source, """
            CREATE TABLE orders (id int PRIMARY KEY, user_id text);
            CREATE PUBLICATION encoding_pub FOR TABLE orders;
            INSERT INTO orders VALUES (1, convert_from('\xe9'::bytea, 'SQL_ASCII'));
            """);
        var options = Options(source, "slot_encoding_source");

        var error = await Assert.ThrowsAsync<WalPipelineConfigurationException>(() => WalPipeline.CheckAsync(options));
        var problem = Assert.Single(error.Errors, e => e.Contains("encoding", StringComparison.Ordinal));
        Assert.StartsWith("The source database \"encoding_source_", problem, StringComparison.Ordinal);
        Assert.Contains("has server encoding SQL_ASCII; the pipeline needs UTF8 (SQL_ASCII stores any bytes unchecked, so values may not be valid UTF-8). "
            + "Create a UTF8 database (CREATE DATABASE ... ENCODING 'UTF8' TEMPLATE template0)", problem, StringComparison.Ordinal);

        await using var pipeline = new WalPipeline(options);
        var started = await Assert.ThrowsAsync<WalPipelineConfigurationException>(() => pipeline.RunAsync());
        Assert.Contains(problem, started.Errors);
        Assert.Equal(0L, await Sql.ScalarAsync<long>(source, "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'slot_encoding_source'"));
    }

    [Fact]
    public async Task A_changelog_database_that_is_not_UTF8_is_refused_by_check_and_at_start()
    {
        var source = await postgres.CreateDatabaseAsync("encoding_utf8_source");
        await Sql.ExecuteAsync(source, """
            CREATE TABLE orders (id int PRIMARY KEY, user_id text);
            CREATE PUBLICATION encoding_pub FOR TABLE orders;
            """);
        var changelog = await CreateDatabaseAsync("encoding_changelog", "LATIN1");
        var options = Options(source, "slot_encoding_changelog");
        options.ChangelogConnectionString = changelog;

        var error = await Assert.ThrowsAsync<WalPipelineConfigurationException>(() => WalPipeline.CheckAsync(options));
        var problem = Assert.Single(error.Errors);
        Assert.StartsWith("The changelog database \"encoding_changelog_", problem, StringComparison.Ordinal);
        Assert.Contains("has server encoding LATIN1; the pipeline needs UTF8", problem, StringComparison.Ordinal);
        Assert.EndsWith("then point the changelog connection string at it.", problem, StringComparison.Ordinal);

        await using var pipeline = new WalPipeline(options);
        await Assert.ThrowsAsync<WalPipelineConfigurationException>(() => pipeline.RunAsync());
        Assert.Equal(0L, await Sql.ScalarAsync<long>(changelog, "SELECT count(*) FROM pg_tables WHERE tablename LIKE 'sync_%'"));
        await Sql.ExecuteAsync(source, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = 'slot_encoding_changelog'");
    }

    private static WalPipelineOptions Options(string source, string slot) => new()
    {
        ConnectionString = source,
        SlotName = slot,
        PublicationName = "encoding_pub",
        Tables = new TableRegistry().Add(new TableRegistration("orders") { OwnerColumn = "user_id", SoftDeleteColumn = null }),
    };

    private async Task<string> CreateDatabaseAsync(string prefix, string encoding)
    {
        var name = $"{prefix}_{Guid.NewGuid():N}"[..40];
        // The names are the test's own; the server's locale is C, which every encoding accepts.
        await Sql.ExecuteAsync(postgres.Server.ConnectionString(), $"CREATE DATABASE {name} ENCODING '{encoding}' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0");
        return postgres.Server.ConnectionString(name);
    }
}
