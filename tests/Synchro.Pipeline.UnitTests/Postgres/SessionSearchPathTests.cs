using Npgsql;
using Synchro.Pipeline.Changelog;
using Synchro.Pipeline.Postgres;
using Synchro.Pipeline.Registry;

namespace Synchro.Pipeline.Tests.Postgres;

/// <summary>The search_path every session is pinned to, and the changelog schema the connection string names.</summary>
public sealed class SessionSearchPathTests
{
    private const string Base = "Host=db;Database=app;Username=sync";

    [Theory]
    [InlineData(null, "public")]
    [InlineData("", "public")]
    [InlineData("synchro", "synchro")]
    [InlineData("  Synchro , public", "synchro")]
    [InlineData("\"Synchro\", public", "Synchro")]
    [InlineData("\"with \"\"quote\"\" and, comma\"", "with \"quote\" and, comma")]
    [InlineData("ÉTÉ", "ÉtÉ")]
    public void The_changelog_schema_is_the_first_schema_of_the_search_path_as_the_server_reads_it(string? searchPath, string schema)
    {
        var connectionString = new NpgsqlConnectionStringBuilder(Base) { SearchPath = searchPath }.ConnectionString;

        Assert.Equal(schema, ChangelogSchema.SchemaOf(connectionString));
    }

    [Fact]
    public void Changelog_sessions_search_the_changelog_schema_then_pg_temp_and_source_sessions_the_given_path_then_pg_temp()
    {
        var named = new NpgsqlConnectionStringBuilder(Base) { SearchPath = "Synchro, app" }.ConnectionString;

        Assert.Equal("\"public\", pg_temp", new NpgsqlConnectionStringBuilder(SessionSearchPath.Changelog(Base)).SearchPath);
        Assert.Equal("\"synchro\", pg_temp", new NpgsqlConnectionStringBuilder(ChangelogSchema.PinSearchPath(named)).SearchPath);
        Assert.Equal("public, pg_temp", new NpgsqlConnectionStringBuilder(SessionSearchPath.Source(Base)).SearchPath);
        Assert.Equal("Synchro, app, pg_temp", new NpgsqlConnectionStringBuilder(SessionSearchPath.Source(named)).SearchPath);
        // Everything else is kept.
        Assert.Equal("sync", new NpgsqlConnectionStringBuilder(SessionSearchPath.Changelog(named)).Username);
    }

    [Theory]
    [InlineData("$user, public", "its Search Path starts with $user, a schema named like the role: name the changelog schema itself (Search Path=synchro)")]
    [InlineData("\"unclosed, public", "its Search Path '\"unclosed, public' is not a list of schema names")]
    [InlineData(", public", "its Search Path ', public' is not a list of schema names")]
    [InlineData("two words", "its Search Path 'two words' is not a list of schema names")]
    public void A_search_path_that_does_not_start_with_a_schema_name_is_refused_naming_the_option(string searchPath, string problem)
    {
        var options = new WalPipelineOptions
        {
            ConnectionString = Base,
            ChangelogConnectionString = new NpgsqlConnectionStringBuilder(Base) { SearchPath = searchPath }.ConnectionString,
            SlotName = "s",
            PublicationName = "p",
            Tables = new TableRegistry().Add(new TableRegistration("orders") { OwnerColumn = "user_id" }),
        };

        Assert.Equal(problem, SessionSearchPath.Problem(searchPath));
        Assert.Contains($"ChangelogConnectionString cannot name the changelog schema: {problem}", Assert.Throws<ArgumentException>(options.Validate).Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => ChangelogSchema.SchemaOf(options.ChangelogConnectionString));
    }

    [Fact]
    public void A_quoted_dollar_user_is_a_schema_of_that_name()
    {
        Assert.Null(SessionSearchPath.Problem("\"$user\""));
        Assert.Equal("$user", ChangelogSchema.SchemaOf(new NpgsqlConnectionStringBuilder(Base) { SearchPath = "\"$user\"" }.ConnectionString));
    }
}
