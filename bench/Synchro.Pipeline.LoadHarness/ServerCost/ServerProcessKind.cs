namespace Synchro.Pipeline.LoadHarness.ServerCost;

/// <summary>
/// The kinds of server process whose CPU the harness reports, and how a process is put in one: by
/// <c>pg_stat_activity.backend_type</c>, the writer's backends by their <c>application_name</c>, and a child of the
/// postmaster that <c>pg_stat_activity</c> does not list (the logger, say), or the postmaster itself, as other server processes.
/// </summary>
internal static class ServerProcessKind
{
    /// <summary>The backends of the measured writer (the pipeline's connections, the COPY baseline's), found by <c>application_name</c>.</summary>
    public const string Writer = "writer";
    public const string Walsender = "walsender";
    public const string WalWriter = "walwriter";
    public const string Checkpointer = "checkpointer";
    public const string BackgroundWriter = "bgwriter";

    /// <summary>The launcher and its workers.</summary>
    public const string Autovacuum = "autovacuum";

    /// <summary>Client backends and parallel or background workers that are not the writer's (pgbench's, the harness's row counts).</summary>
    public const string OtherBackends = "otherBackends";

    /// <summary>The postmaster, and its children of every other kind (logger, archiver, I/O workers, startup, launchers).</summary>
    public const string OtherProcesses = "otherProcesses";

    /// <summary>The report's order, and each kind's heading.</summary>
    public static IReadOnlyList<(string Kind, string Heading)> All { get; } =
    [
        (Writer, "writer backends"),
        (Walsender, "walsender"),
        (WalWriter, "walwriter"),
        (Checkpointer, "checkpointer"),
        (BackgroundWriter, "bgwriter"),
        (Autovacuum, "autovacuum"),
        (OtherBackends, "other backends"),
        (OtherProcesses, "other server processes"),
    ];

    /// <summary>
    /// The kind of a process <c>pg_stat_activity</c> lists; null for the sampler's own backend, which is not counted.
    /// A walsender is a walsender whatever its <c>application_name</c> (the pipeline's replication connection carries the writer's).
    /// </summary>
    public static string? Classify(string? backendType, string? applicationName, IReadOnlySet<string> writerApplications, string samplerApplication)
    {
        switch (backendType)
        {
            case "walsender":
                return Walsender;
            case "walwriter":
                return WalWriter;
            case "checkpointer":
                return Checkpointer;
            case "background writer":
                return BackgroundWriter;
            case "autovacuum launcher" or "autovacuum worker":
                return Autovacuum;
        }
        if (applicationName == samplerApplication)
            return null;
        if (applicationName is { Length: > 0 } name && writerApplications.Contains(name))
            return Writer;
        return backendType is "client backend" or "parallel worker" or "background worker" ? OtherBackends : OtherProcesses;
    }
}
