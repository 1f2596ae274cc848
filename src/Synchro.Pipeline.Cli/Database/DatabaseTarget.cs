using Npgsql;

namespace Synchro.Pipeline.Cli.Database;

/// <summary>How a database is named in output and logs: never the connection string, which may hold a password.</summary>
internal static class DatabaseTarget
{
    /// <summary><c>host:port/database as user</c>.</summary>
    public static string Describe(string connectionString)
    {
        var builder = new NpgsqlConnectionStringBuilder(connectionString);
        var user = string.IsNullOrEmpty(builder.Username) ? "" : $" as {builder.Username}";
        return $"{builder.Host}:{builder.Port}/{builder.Database}{user}";
    }
}
