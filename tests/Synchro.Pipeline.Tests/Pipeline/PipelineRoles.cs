using Npgsql;
using Synchro.Pipeline.Tests.Infrastructure;

namespace Synchro.Pipeline.Tests.Pipeline;

/// <summary>
/// The three roles of docs/setup.md ("Roles and grants"), made with the SQL given there: the source role
/// (LOGIN, REPLICATION, SELECT on the registered tables, EXECUTE on the rule functions), the changelog role (DML on the
/// sidecar tables) and the owner who runs <c>migrate</c>. Names are unique per test (roles belong to the whole server);
/// each has a password, put in the connection strings, so they work with password authentication as with trust.
/// </summary>
internal sealed class PipelineRoles
{
    public const string Password = "synchro-role-secret";

    private PipelineRoles(string suffix)
    {
        Source = "synchro_source_" + suffix;
        Changelog = "synchro_changelog_" + suffix;
        Owner = "synchro_owner_" + suffix;
    }

    public string Source { get; }

    public string Changelog { get; }

    public string Owner { get; }

    /// <summary>Creates the three roles (as the superuser of <paramref name="admin"/>).</summary>
    public static async Task<PipelineRoles> CreateAsync(string admin)
    {
        var roles = new PipelineRoles(Guid.NewGuid().ToString("N")[..10]);
        await Sql.ExecuteAsync(admin, $"""
            CREATE ROLE {roles.Source} LOGIN REPLICATION PASSWORD '{Password}';
            CREATE ROLE {roles.Owner} LOGIN PASSWORD '{Password}';
            CREATE ROLE {roles.Changelog} LOGIN PASSWORD '{Password}';
            """);
        return roles;
    }

    /// <summary>The source role's grants on the source database (run as the tables' owner).</summary>
    public string SourceGrants(string tables, string? functions = null) => $"""
        GRANT SELECT ON {tables} TO {Source};
        {(functions is null ? "" : $"GRANT EXECUTE ON FUNCTION {functions} TO {Source};")}
        """;

    /// <summary>The optional grant of the replication origin functions to the changelog role, with the changelog in the source database.</summary>
    public string OriginGrants() => $"""
        GRANT EXECUTE ON FUNCTION pg_catalog.pg_replication_origin_create, pg_catalog.pg_replication_origin_oid,
            pg_catalog.pg_replication_origin_drop, pg_catalog.pg_replication_origin_session_setup,
            pg_catalog.pg_replication_origin_session_reset TO {Changelog};
        """;

    /// <summary>The changelog role's grants on the migrated sidecar tables (run as their owner, after migrate).</summary>
    public string ChangelogGrants(string schema) => $"""
        GRANT USAGE ON SCHEMA {schema} TO {Changelog};
        GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {Changelog};
        GRANT USAGE ON ALL SEQUENCES IN SCHEMA {schema} TO {Changelog};
        """;

    /// <summary><paramref name="connectionString"/> logging in as <paramref name="role"/> with its password.</summary>
    public static string As(string connectionString, string role, string? searchPath = null, string? applicationName = null)
    {
        var builder = new NpgsqlConnectionStringBuilder(connectionString) { Username = role, Password = Password };
        if (searchPath is not null)
            builder.SearchPath = searchPath;
        if (applicationName is not null)
            builder.ApplicationName = applicationName;
        return builder.ConnectionString;
    }
}
