using Synchro.Pipeline.Postgres;

namespace Synchro.Pipeline;

// Statement timeouts by kind and the bounded retries of a statement that fails for reasons a later attempt may not meet.
// The defaults were measured (docs/configuration.md#statement-timeouts): each is far above what its statement takes.
public sealed partial class WalPipelineOptions
{
    /// <summary>
    /// The longest one statement of a batch's changelog transaction may run (the edge load, the changelog COPY, the edge
    /// changes, the rule failures, the position, the commit); the server cancels it past this. Default 1 minute.
    /// </summary>
    /// <remarks>Measured: the slowest statement of a 10,000-change batch, a COPY into a changelog of 5 million rows, took 1.2 s (docs/configuration.md#statement-timeouts).</remarks>
    public TimeSpan BatchWriteTimeout { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>
    /// The longest a bucket rule's query in the source database may run: a SQL bucket function's query over a batch, or an
    /// application assigner's queries. Default 30 seconds.
    /// </summary>
    /// <remarks>
    /// A function query that times out after some changes were answered goes on after them, so the limit is in practice
    /// per change. One change that alone takes longer becomes a rule failure (invariant 7); when the next change alone times
    /// out too, the function is slow or blocked for everything, and that is an operational error, retried
    /// <see cref="MaxStatementRetries"/> times (docs/operations.md#timeouts-and-retries).
    /// </remarks>
    public TimeSpan RuleQueryTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>The longest a lookup of parent rows (one level of the parent chain, one table, per batch) may run. Default 30 seconds.</summary>
    public TimeSpan ParentLookupTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// The longest the one statement applying a TRUNCATE may run: it deletes the table's bucket edges and writes a delete row
    /// for each, so its time grows with the table. Also the initial snapshot's removal of earlier edges. Default 30 minutes.
    /// </summary>
    /// <remarks>Measured: 32 s for a table with 1,000,000 edges, so the default covers tens of millions.</remarks>
    public TimeSpan TruncateTimeout { get; set; } = TimeSpan.FromMinutes(30);

    /// <summary>The longest one statement of the initial snapshot load may run: reading a chunk of rows, or writing its edges. Default 2 minutes.</summary>
    public TimeSpan SnapshotChunkTimeout { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>
    /// The longest one statement of a <c>replay-failures</c> chunk may run, including the wait for the lock on
    /// <c>sync_bucket_edges</c> (the pipeline's transaction in progress, which a large source transaction holds open across
    /// its chunks). Default 5 minutes.
    /// </summary>
    public TimeSpan ReplayChunkTimeout { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>
    /// How many times in a row a batch (or a start, or a replay chunk) is tried again after a statement timeout, a deadlock,
    /// a serialization failure, a lock not available or a query cancelled by another session, before the pipeline stops
    /// with the error. Default 3. A lost connection is retried without limit (see <see cref="MaxReconnectDelay"/>).
    /// </summary>
    /// <remarks>The count starts over once something is committed.</remarks>
    public int MaxStatementRetries { get; set; } = 3;

    /// <summary>The statement timeouts, as the runtime uses them.</summary>
    internal StatementTimeouts StatementTimeouts => new(BatchWriteTimeout, RuleQueryTimeout, ParentLookupTimeout, TruncateTimeout, SnapshotChunkTimeout, ReplayChunkTimeout);

    private void FindTimeoutProblems(List<string> problems)
    {
        Check(nameof(BatchWriteTimeout), BatchWriteTimeout);
        Check(nameof(RuleQueryTimeout), RuleQueryTimeout);
        Check(nameof(ParentLookupTimeout), ParentLookupTimeout);
        Check(nameof(TruncateTimeout), TruncateTimeout);
        Check(nameof(SnapshotChunkTimeout), SnapshotChunkTimeout);
        Check(nameof(ReplayChunkTimeout), ReplayChunkTimeout);
        if (MaxStatementRetries is < 0 or > 100)
            problems.Add($"{nameof(MaxStatementRetries)} is {MaxStatementRetries}; it must be between 0 (stop at the first) and 100");

        void Check(string name, TimeSpan value)
        {
            if (value < TimeSpan.FromMilliseconds(1) || value > StatementTimeouts.Longest)
                problems.Add($"{name} is {value}; it must be between 1 ms and 1 day");
        }
    }
}
