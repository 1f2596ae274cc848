namespace Synchro.Pipeline.LoadHarness.Contenders;

/// <summary>The contenders, in the order they run; also their slot names' suffixes.</summary>
internal static class ContenderNames
{
    public const string PgRecvLogical = "pg_recvlogical";
    public const string Npgsql = "npgsql_pgoutput";
    public const string OursReadOnly = "ours_read_only";
    public const string OursEndToEnd = "ours_end_to_end";
    public const string GoPerChange = "go_per_change";
    public const string BinaryCopy = "binary_copy";

    /// <summary>Ours end to end on one large transaction (<see cref="Backlog.BigTransaction"/>), reported apart from the backlog.</summary>
    public const string OursBigTransaction = "ours_big_transaction";

    /// <summary>Contenders that read the backlog from a slot of their own.</summary>
    public static readonly IReadOnlyList<string> Draining = [PgRecvLogical, Npgsql, OursReadOnly, OursEndToEnd, GoPerChange];

    public static string Slot(string contender) => "bench_" + contender;

    /// <summary>The <c>application_name</c> of the connections that write the changelog (our pipeline's, the COPY baseline's): the server's writer backends.</summary>
    public const string WriterApplication = "synchro-bench-writer";

    public static IReadOnlySet<string> WriterApplications { get; } = new HashSet<string>(StringComparer.Ordinal) { WriterApplication };

    /// <summary><paramref name="connectionString"/> with the writer's <c>application_name</c>; null stays null.</summary>
    public static string? AsWriter(string? connectionString)
        => connectionString is null ? null : new Npgsql.NpgsqlConnectionStringBuilder(connectionString) { ApplicationName = WriterApplication }.ConnectionString;
}
