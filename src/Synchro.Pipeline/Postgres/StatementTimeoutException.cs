using System.Globalization;

namespace Synchro.Pipeline.Postgres;

/// <summary>
/// A statement of one <see cref="StatementKind"/> ran past its timeout and the server cancelled it: the message names the
/// kind, the option that sets it and what to check. Retried a bounded number of times
/// (<c>WalPipelineOptions.MaxStatementRetries</c>) from the persisted position, then fatal.
/// </summary>
internal sealed class StatementTimeoutException(StatementKind kind, TimeSpan timeout, string what, Exception innerException)
    : Exception(Describe(kind, timeout, what), innerException)
{
    /// <summary>The kind of statement that timed out.</summary>
    public StatementKind Kind { get; } = kind;

    /// <summary>The timeout it ran past.</summary>
    public TimeSpan Timeout { get; } = timeout;

    /// <summary>How a timeout reads: what ran, the limit and its option, what to check.</summary>
    public static string Describe(StatementKind kind, TimeSpan timeout, string what) =>
        $"{what} took longer than {StatementTimeouts.OptionName(kind)} ({Format(timeout)}) and the server cancelled it (statement timeout). {Advice(kind)}";

    /// <summary>A timeout as people read it: <c>250 ms</c>, <c>30 s</c>, <c>10 min</c>.</summary>
    public static string Format(TimeSpan timeout) => timeout switch
    {
        { TotalSeconds: < 1 } => string.Create(CultureInfo.InvariantCulture, $"{timeout.TotalMilliseconds:0.#} ms"),
        { TotalMinutes: < 2 } => string.Create(CultureInfo.InvariantCulture, $"{timeout.TotalSeconds:0.#} s"),
        _ => string.Create(CultureInfo.InvariantCulture, $"{timeout.TotalMinutes:0.#} min"),
    };

    private static string Advice(StatementKind kind) => kind switch
    {
        StatementKind.BatchWrite =>
            "The changelog database is slow or blocked: look for locks on the sidecar tables (pg_locks, pg_stat_activity: a long replay-failures chunk, "
            + "a reader or maintenance holding locks), bloat of sync_changelog and sync_bucket_edges and their indexes, or an overloaded server; "
            + $"if batches are legitimately this slow, raise {StatementTimeouts.OptionName(kind)} or lower MaxBatchRows.",
        StatementKind.RuleQuery =>
            "Check the rule: run the bucket function (or the assigner's query) by hand with EXPLAIN ANALYZE, look for locks on the tables it reads "
            + $"(pg_locks) and for missing indexes; or raise {StatementTimeouts.OptionName(kind)}.",
        StatementKind.ParentLookup =>
            "Check the parent table: locks on it (pg_locks), an index on its id column, bloat; "
            + $"or raise {StatementTimeouts.OptionName(kind)}.",
        StatementKind.Truncate =>
            "Its time grows with the number of bucket edges the table had (one delete row per edge): "
            + $"raise {StatementTimeouts.OptionName(kind)} for tables this large, and look for locks on sync_bucket_edges and sync_changelog.",
        StatementKind.SnapshotChunk =>
            "The source table or the changelog database is slow or blocked during the initial snapshot load: look for locks (pg_locks) and load; "
            + $"raise {StatementTimeouts.OptionName(kind)}, or lower MaxBatchRows (the chunk size).",
        _ =>
            "A replay chunk first waits for the pipeline's batch in progress (it locks sync_bucket_edges), then re-evaluates its failures: "
            + $"look for locks and long batches, raise {StatementTimeouts.OptionName(kind)} or replay in smaller chunks.",
    };
}
