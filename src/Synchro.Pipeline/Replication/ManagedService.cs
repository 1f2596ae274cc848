using Synchro.Pipeline.Postgres;

namespace Synchro.Pipeline.Replication;

/// <summary>A managed PostgreSQL service, told by the settings only it defines; each changes server settings and roles its own way.</summary>
internal enum ManagedService
{
    /// <summary>A server of your own: postgresql.conf, <c>ALTER SYSTEM</c>, a superuser.</summary>
    None,

    /// <summary>Amazon RDS for PostgreSQL or Aurora PostgreSQL: parameter groups, <c>rds_replication</c>, no superuser.</summary>
    AmazonRds,

    /// <summary>Google Cloud SQL for PostgreSQL: database flags, <c>cloudsqlsuperuser</c>.</summary>
    GoogleCloudSql,

    /// <summary>Azure Database for PostgreSQL flexible server: server parameters, <c>azure_pg_admin</c>.</summary>
    AzureFlexibleServer,
}

/// <summary>How each <see cref="ManagedService"/> is recognised, and the steps its fixes take (docs/setup.md).</summary>
internal static class ManagedServices
{
    /// <summary>
    /// A SQL expression naming the service: <c>rds</c>, <c>cloudsql</c>, <c>azure</c> or NULL. <c>current_setting(name, true)</c>
    /// is NULL for a setting the server does not define, so it reads nothing on a plain server.
    /// </summary>
    public const string DetectSql = """
        CASE WHEN pg_catalog.current_setting('rds.logical_replication', true) IS NOT NULL
                  OR pg_catalog.current_setting('rds.extensions', true) IS NOT NULL THEN 'rds'
             WHEN pg_catalog.current_setting('cloudsql.logical_decoding', true) IS NOT NULL
                  OR pg_catalog.current_setting('cloudsql.iam_authentication', true) IS NOT NULL THEN 'cloudsql'
             WHEN pg_catalog.current_setting('azure.extensions', true) IS NOT NULL THEN 'azure'
        END
        """;

    /// <summary>The service <see cref="DetectSql"/> named.</summary>
    public static ManagedService Parse(string? detected) => detected switch
    {
        "rds" => ManagedService.AmazonRds,
        "cloudsql" => ManagedService.GoogleCloudSql,
        "azure" => ManagedService.AzureFlexibleServer,
        _ => ManagedService.None,
    };

    /// <summary>How the fix speaks of the server.</summary>
    public static string Describe(ManagedService service) => service switch
    {
        ManagedService.AmazonRds => "Amazon RDS or Aurora PostgreSQL",
        ManagedService.GoogleCloudSql => "Google Cloud SQL for PostgreSQL",
        ManagedService.AzureFlexibleServer => "Azure Database for PostgreSQL flexible server",
        _ => "PostgreSQL",
    };

    /// <summary>The step that turns logical decoding on (wal_level = logical); every service needs a restart for it.</summary>
    public static string EnableLogicalDecoding(ManagedService service) => service switch
    {
        ManagedService.AmazonRds =>
            "this is Amazon RDS or Aurora, where ALTER SYSTEM is not allowed: set rds.logical_replication = 1 in the instance's custom DB parameter group "
            + "(Aurora: the DB cluster parameter group), then reboot the instance (Aurora: the writer); wal_level is logical after the reboot",
        ManagedService.GoogleCloudSql =>
            "this is Google Cloud SQL, where ALTER SYSTEM is not allowed: set the database flag cloudsql.logical_decoding = on "
            + "(console: Edit, Flags; gcloud sql instances patch INSTANCE --database-flags=..., which replaces every flag, so list the existing ones too), then restart the instance",
        ManagedService.AzureFlexibleServer =>
            "this is Azure Database for PostgreSQL flexible server, where ALTER SYSTEM is not allowed: set the server parameter wal_level = logical "
            + "(portal: Server parameters; or az postgres flexible-server parameter set --resource-group RG --server-name SERVER --name wal_level --value logical), then restart the server",
        _ => "run ALTER SYSTEM SET wal_level = logical (or set it in postgresql.conf) as a superuser, then restart the server",
    };

    /// <summary>The step that sets a server-start setting (such as max_replication_slots) to <paramref name="value"/>, restart included.</summary>
    public static string SetStartSetting(ManagedService service, string name, string value) => service switch
    {
        ManagedService.AmazonRds => $"set {name} = {value} in the DB parameter group (Aurora: the DB cluster parameter group), then reboot",
        ManagedService.GoogleCloudSql => $"set the database flag {name} = {value}, then restart the instance",
        ManagedService.AzureFlexibleServer => $"set the server parameter {name} = {value} (portal: Server parameters), then restart the server",
        _ => $"run ALTER SYSTEM SET {name} = {value} as a superuser, then restart the server",
    };

    /// <summary>The statement, and who runs it, that lets <paramref name="role"/> open replication connections and create slots.</summary>
    public static string GrantReplication(ManagedService service, string role)
    {
        var quoted = PgIdentifier.Quote(role);
        return service switch
        {
            ManagedService.AmazonRds => $"as the master user (a member of rds_superuser): GRANT rds_replication TO {quoted};",
            ManagedService.GoogleCloudSql => $"as a member of cloudsqlsuperuser (the postgres user): ALTER USER {quoted} WITH REPLICATION;",
            ManagedService.AzureFlexibleServer => $"as the server admin (a member of azure_pg_admin): ALTER ROLE {quoted} WITH REPLICATION;",
            _ => $"as a superuser: ALTER ROLE {quoted} WITH REPLICATION;",
        };
    }
}
