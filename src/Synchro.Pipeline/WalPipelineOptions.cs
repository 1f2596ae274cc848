using System.Diagnostics.Metrics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using Synchro.Pipeline.Buckets;
using Synchro.Pipeline.Registry;

namespace Synchro.Pipeline;

/// <summary>What a <see cref="WalPipeline"/> reads, where it writes, and its limits.</summary>
/// <remarks>Checked when the pipeline is created (<see cref="Validate"/>); each message names the bad option.</remarks>
public sealed partial class WalPipelineOptions
{
    /// <summary>Connection string of the source database (the one with the publication and the slot).</summary>
    public string ConnectionString { get; set; } = "";

    /// <summary>Connection string of the database holding the sidecar tables. Default: the source database.</summary>
    /// <remarks>
    /// The sidecar tables are in the first schema its <c>Search Path</c> names (default <c>public</c>); the pipeline's
    /// sessions run with a pinned <c>search_path</c> whatever the role's or database's setting.
    /// </remarks>
    public string? ChangelogConnectionString { get; set; }

    /// <summary>The logical replication slot (pgoutput). Lower-case letters, digits and underscores.</summary>
    public string SlotName { get; set; } = "";

    /// <summary>The publication that covers the registered tables.</summary>
    public string PublicationName { get; set; } = "";

    /// <summary>Create the slot when it does not exist. Default true.</summary>
    public bool CreateSlotIfMissing { get; set; } = true;

    /// <summary>
    /// When the pipeline creates its slot, first load the bucket edges of the rows the registered tables already hold, from
    /// the snapshot the slot exports (so they match the slot's start exactly), before streaming. Default true.
    /// </summary>
    /// <remarks>
    /// Without the edges, the first owner change of an existing row would emit no delete in its old bucket. Turn off only
    /// when the application populates <c>sync_bucket_edges</c> itself. No changelog rows are written by the load.
    /// </remarks>
    public bool InitialSnapshot { get; set; } = true;

    /// <summary>The tables whose changes reach the changelog.</summary>
    public TableRegistry Tables { get; set; } = new();

    /// <summary>
    /// Decides buckets. Default: <see cref="DefaultBucketAssigner"/> (owner/bucket column, then parent chain). SQL function
    /// rules (<see cref="TableRegistration.BucketFunction"/>, <see cref="TableRegistry.GlobalBucketFunction"/>) run before it;
    /// an exception it throws fails the changes it left undecided (recorded as rule failures) and the pipeline goes on.
    /// </summary>
    public IBucketAssigner? BucketAssigner { get; set; }

    /// <summary>
    /// The most buckets one change may belong to; a change whose rule returns more distinct buckets is not written but
    /// recorded in <c>sync_rule_failures</c> with the count and this limit. 0 for no limit. Default 1,000.
    /// </summary>
    public int MaxBucketsPerChange { get; set; } = 1_000;

    /// <summary>
    /// The longest record id, in bytes of UTF-8, a change may have; a change with a longer one is not written but recorded in
    /// <c>sync_rule_failures</c> with the length and this limit. Default 1,024.
    /// </summary>
    /// <remarks>
    /// Record ids and bucket ids are keys of the changelog's btree indexes, whose entries hold at most 2,704 bytes on 8 KB
    /// pages; a longer key would fail its whole batch. Measured on PostgreSQL 15 with incompressible text (compressible
    /// text fits further, so the limit does not count on it): next to a 127-byte table name, the longest a schema-qualified
    /// name can be, the indexes of <c>sync_bucket_edges</c> accept a record id and a bucket id of 2,556 bytes together,
    /// so <see cref="MaxRecordIdBytes"/> + <see cref="MaxBucketIdBytes"/> may be at most 2,556. The defaults, 1 KiB each,
    /// leave a quarter of that to spare.
    /// </remarks>
    public int MaxRecordIdBytes { get; set; } = Changelog.ChangelogLimits.DefaultMaxRecordIdBytes;

    /// <summary>
    /// The longest bucket id, in bytes of UTF-8, a change may be given; a change with a longer one (an owner value users
    /// type in, a rule like <c>'team:' || name</c>) is not written but recorded in <c>sync_rule_failures</c> with the
    /// length and this limit. Default 1,024.
    /// </summary>
    /// <remarks>How the default was chosen: see <see cref="MaxRecordIdBytes"/>; the two share the 2,556 bytes the edge indexes accept.</remarks>
    public int MaxBucketIdBytes { get; set; } = Changelog.ChangelogLimits.DefaultMaxBucketIdBytes;

    /// <summary>A batch is cut at the first transaction end after this many changes (a larger transaction is written in chunks of this size). Default 10,000.</summary>
    public int MaxBatchRows { get; set; } = 10_000;

    /// <summary>A batch is cut at the first transaction end after this many bytes of pgoutput. Default 8 MiB.</summary>
    public long MaxBatchBytes { get; set; } = 8 * 1024 * 1024;

    /// <summary>How long whole transactions may wait for more before their batch is written. Default 20 ms.</summary>
    public TimeSpan BatchLinger { get; set; } = TimeSpan.FromMilliseconds(20);

    /// <summary>WAL bytes buffered between the socket and the decoder before reading pauses. Default 16 MiB.</summary>
    public long WalBufferBytes { get; set; } = 16 * 1024 * 1024;

    /// <summary>
    /// Read coalescing: on a busy stream the reader holds the socket thread for a moment after a read that had to wait, so
    /// packets pile up and the next reads take them at once, and the decoder runs inline on that thread instead of behind
    /// a thread-pool hand-off. Default false.
    /// </summary>
    /// <remarks>
    /// <para>
    /// Turn it on only when the process runs with <c>DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS=1</c> (socket
    /// completions run on the runtime's socket thread; the runtime reads the variable once, before the first socket) and
    /// owns that thread: the other sockets it serves wait while the reader holds it. Without inline completions the wait
    /// would block a thread-pool thread and the inline decoder would only move the hand-off, so leave it off. The library
    /// never reads or sets the variable; the <c>synchro-pipeline</c> CLI sets it and turns this on.
    /// </para>
    /// <para>
    /// Measured on 2 cores with inline completions: a 1,000,000-change backlog drained with 3.4 s of client CPU instead
    /// of 10.8 s, at the same speed as <c>pg_recvlogical</c>; the inline decoder alone took a 300,000-change backlog from
    /// 5.2 s of client CPU to 2.8 s. A quiet stream never waits.
    /// </para>
    /// </remarks>
    public bool ReadCoalescing { get; set; }

    /// <summary>How often a status update is sent to the server. Default 10 s (the reference's StandbyTimeout).</summary>
    public TimeSpan StatusInterval { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>The longest wait between reconnection attempts after a lost connection. Default 30 s.</summary>
    public TimeSpan MaxReconnectDelay { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// How long a start waits for the slot while another session holds it — the slot lock of a pipeline that is still
    /// stopping, or the walsender of a consumer that is gone — before it fails naming the holder. Default 75 s; 0 does not wait.
    /// </summary>
    /// <remarks>
    /// A pipeline stopped cleanly lets go within seconds, and one killed on a host that stays up at once (the kernel closes
    /// its connections; measured on PostgreSQL 15: 0.07 s). A client whose host vanished keeps its walsender until
    /// <c>wal_sender_timeout</c> (60 s by default) and its slot lock until the server's TCP keepalive notices (set to
    /// 25 s on that session by the pipeline); the default covers both.
    /// </remarks>
    public TimeSpan SlotWaitTimeout { get; set; } = TimeSpan.FromSeconds(75);

    /// <summary>A batch that takes longer than this to write is logged as a warning. Default 5 s.</summary>
    public TimeSpan SlowBatchThreshold { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Asks the server for column values in binary send format (pgoutput <c>binary 'true'</c>, PostgreSQL 14+) instead of
    /// text. Default false.
    /// </summary>
    /// <remarks>
    /// The id, owner, bucket-by and parent foreign-key columns are converted back to the exact text the server would
    /// have sent, so the changelog is identical; they must be of type uuid, smallint, integer, bigint, oid, boolean,
    /// text, varchar, char(n) or name (checked at start). A soft-delete column may be of any type: only null versus
    /// non-null is read, and a value of a type without conversion reads as the empty string.
    /// </remarks>
    public bool BinaryTupleMode { get; set; }

    /// <summary>
    /// Ask the server to stream transactions larger than its <c>logical_decoding_work_mem</c> while they run (pgoutput
    /// protocol 2) instead of spilling them to its own disk until they commit. Default true.
    /// </summary>
    /// <remarks>
    /// Streamed changes are decoded as they arrive and kept in a file per transaction under <see cref="SpillDirectory"/>
    /// until the transaction commits (then they are written in commit order, in batches of <see cref="MaxBatchRows"/>)
    /// or aborts (then the file is deleted).
    /// </remarks>
    public bool StreamLargeTransactions { get; set; } = true;

    /// <summary>
    /// Decode prepared transactions at PREPARE TRANSACTION (pgoutput protocol 3, a two_phase slot). Default false.
    /// </summary>
    /// <remarks>
    /// Nothing reaches the changelog before COMMIT PREPARED. A prepared transaction's changes are kept in the
    /// <c>sync_prepared_transactions</c> sidecar table until then, and deleted at ROLLBACK PREPARED. A new slot is
    /// created with two_phase; an existing slot created with two_phase needs this option on.
    /// </remarks>
    public bool TwoPhase { get; set; }

    /// <summary>
    /// Where the changes of streamed and prepared transactions wait for their end, in a directory per slot that is
    /// emptied at every connection. Default: <c>synchro-pipeline-spill-&lt;uid&gt;</c> under the system's temporary
    /// directory (the user's own).
    /// </summary>
    /// <remarks>
    /// The slot's directory (and the default root) is created with mode 0700 and must belong to the process's user; its
    /// files are created with mode 0600. A directory there that belongs to another user, or is a symbolic link, is refused
    /// at start, and so is a <see cref="SpillDirectory"/> that other users could write into without the sticky bit.
    /// </remarks>
    public string? SpillDirectory { get; set; }

    /// <summary>
    /// The most the spill files of open streamed and prepared transactions may hold together, in bytes; 0 turns the cap
    /// off. Default 1 GiB. A transaction that needs more stops the pipeline with an error that names it (nothing of it
    /// is written; the server sends it again at the next start): raise the cap where the disk, or the memory of a
    /// memory-backed temporary directory, has the room, or turn <see cref="StreamLargeTransactions"/> off.
    /// </summary>
    public long MaxSpillBytes { get; set; } = 1L << 30;

    /// <summary>Logging; categories <c>Synchro.Pipeline</c> (lifecycle) and <c>Synchro.Pipeline.Reader</c>, <c>.Decoder</c>, <c>.Writer</c>, <c>.Committer</c>. Default: none.</summary>
    public ILoggerFactory LoggerFactory { get; set; } = NullLoggerFactory.Instance;

    /// <summary>Creates the <c>Synchro.Pipeline</c> meter (the DI container's factory when hosted). Default: a meter of the pipeline's own.</summary>
    public IMeterFactory? MeterFactory { get; set; }

    /// <summary>
    /// When nothing was committed for this long, a heartbeat (a tiny non-transactional logical message) is written into the
    /// source WAL, so the slot advances even when only other databases, or unpublished tables, write WAL. Default null:
    /// <see cref="StatusInterval"/>. <see cref="TimeSpan.Zero"/> turns heartbeats off (the slot then holds WAL back until
    /// the next change of a registered table).
    /// </summary>
    public TimeSpan? HeartbeatInterval { get; set; }

    /// <summary>How often the slot's <c>wal_status</c> and <c>safe_wal_size</c> are checked while running. Default 10 s; <see cref="TimeSpan.Zero"/> turns the watch off.</summary>
    public TimeSpan SlotHealthInterval { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// A warning is logged when the slot's <c>safe_wal_size</c> (WAL that may still be written before the slot is lost)
    /// falls below this many bytes. Default null: a quarter of the server's <c>max_slot_wal_keep_size</c>. 0 warns only on
    /// <c>wal_status</c> 'unreserved'. Without <c>max_slot_wal_keep_size</c> the server never invalidates the slot.
    /// </summary>
    public long? SlotSafeWalSizeWarning { get; set; }

    /// <summary>
    /// Replication origins (<c>pg_replication_origin_session_setup</c>) whose transactions are skipped: no changelog rows,
    /// position still advanced past them. For ignoring what another sync process wrote. Default: none.
    /// </summary>
    public ISet<string> SkipOrigins { get; } = new HashSet<string>(StringComparer.Ordinal);

    /// <summary>
    /// Whether the changelog writes carry a replication origin of the pipeline's own (<c>synchro_pipeline.&lt;slot&gt;</c>)
    /// when the changelog is in the source database, so that decoding leaves them out. Default true.
    /// </summary>
    /// <remarks>
    /// The changelog role needs EXECUTE on the <c>pg_replication_origin_*</c> functions (superusers have it); without it the
    /// pipeline logs event 3005 once per run and goes on. Either way a transaction that carries nothing for a registered
    /// table never causes a changelog write, so the pipeline never feeds on itself; the origin saves the work of decoding
    /// and sending those writes, most of all with <see cref="FilterOriginsOnServer"/>.
    /// </remarks>
    public bool TagOwnWrites { get; set; } = true;

    /// <summary>
    /// PostgreSQL 16+: ask the server to send no transaction that carries a replication origin (pgoutput's
    /// <c>origin 'none'</c>). Default false.
    /// </summary>
    /// <remarks>
    /// The walsender then drops the pipeline's own changelog writes (<see cref="TagOwnWrites"/>) before decoding them,
    /// instead of decoding, sending and having the pipeline drop them. But it also leaves out every change that logical
    /// replication (a subscription) or any other origin-tagged session wrote into the source database: set it only when
    /// nothing replicates into that database, or when those changes should not reach the changelog. No effect before 16.
    /// </remarks>
    public bool FilterOriginsOnServer { get; set; }

    /// <summary>
    /// Application handlers for logical decoding messages (<c>pg_logical_emit_message</c>), by exact prefix. Messages with
    /// other prefixes are ignored (their content is not even copied). Default: none.
    /// </summary>
    /// <remarks>
    /// Delivered by the writer, in stream order, after the changelog transaction of the batch that holds them commits and
    /// before the server is told the position past them: a transactional message only for a committed source transaction,
    /// in commit order; a non-transactional one where it was emitted. At least once: after a crash, messages the server
    /// was not told about are delivered again. A handler that throws stops the pipeline (the message is delivered again
    /// on restart). The prefix <c>synchro.heartbeat</c> is the pipeline's own.
    /// </remarks>
    public IDictionary<string, Func<LogicalMessage, CancellationToken, ValueTask>> MessageHandlers { get; } =
        new Dictionary<string, Func<LogicalMessage, CancellationToken, ValueTask>>(StringComparer.Ordinal);

    /// <summary>Load harness only: batches are dropped instead of written, so a run measures reading and decoding alone.</summary>
    internal bool DiscardWrites { get; set; }

    /// <summary>
    /// Load harness only: on PostgreSQL 16+, ask for pgoutput protocol 4 with <c>streaming 'parallel'</c> instead of
    /// protocol 2 (3 with <see cref="TwoPhase"/>) with <c>streaming 'on'</c>, to compare the two (docs/performance.md).
    /// </summary>
    internal bool ParallelStreaming { get; set; }

    /// <summary>Tests only: called after every chunk and table of the initial snapshot load, on the loading task.</summary>
    internal Action<Diagnostics.EdgeSnapshotProgress>? SnapshotProgress { get; set; }

    /// <summary>Checks every option.</summary>
    /// <exception cref="ArgumentException">An option is invalid; the message names it and says what is allowed.</exception>
    public void Validate()
    {
        var problems = FindProblems();
        if (problems.Count > 0)
            throw new ArgumentException("Invalid WalPipelineOptions:" + string.Concat(problems.Select(p => Environment.NewLine + " - " + p)));
    }

    /// <summary>Every invalid option, one message each naming it; empty when the options are valid.</summary>
    internal List<string> FindProblems()
    {
        var problems = new List<string>();
        CheckConnectionString(problems, nameof(ConnectionString), ConnectionString);
        if (ChangelogConnectionString is not null)
            CheckConnectionString(problems, nameof(ChangelogConnectionString), ChangelogConnectionString);
        if (PrimaryConnectionString is not null)
            CheckConnectionString(problems, nameof(PrimaryConnectionString), PrimaryConnectionString);
        for (var i = 0; i < FailoverStandbys.Count; i++)
            CheckConnectionString(problems, $"{nameof(FailoverStandbys)}[{i}]", FailoverStandbys[i]);
        CheckChangelogSchema(problems);
        FindAuthenticationProblems(problems);
        if (string.IsNullOrEmpty(SlotName))
            problems.Add($"{nameof(SlotName)} is required");
        else if (SlotName.Length > 63 || !SlotName.All(c => c is (>= 'a' and <= 'z') or (>= '0' and <= '9') or '_'))
            problems.Add($"{nameof(SlotName)} '{SlotName}' is not a valid replication slot name: use 1 to 63 lower-case letters, digits and underscores");
        if (string.IsNullOrWhiteSpace(PublicationName))
            problems.Add($"{nameof(PublicationName)} is required");
        else if (PublicationName.Contains('\0', StringComparison.Ordinal))
            problems.Add($"{nameof(PublicationName)} must name a publication");
        if (MaxBatchRows < 1)
            problems.Add($"{nameof(MaxBatchRows)} is {MaxBatchRows}; it must be at least 1");
        if (MaxBucketsPerChange < 0)
            problems.Add($"{nameof(MaxBucketsPerChange)} is {MaxBucketsPerChange}; it must be 0 (no limit) or more");
        if (MaxRecordIdBytes < 1)
            problems.Add($"{nameof(MaxRecordIdBytes)} is {MaxRecordIdBytes}; it must be at least 1");
        if (MaxBucketIdBytes < 1)
            problems.Add($"{nameof(MaxBucketIdBytes)} is {MaxBucketIdBytes}; it must be at least 1");
        if ((long)MaxRecordIdBytes + MaxBucketIdBytes > Changelog.ChangelogLimits.MaxIdBytesTogether)
        {
            problems.Add($"{nameof(MaxRecordIdBytes)} + {nameof(MaxBucketIdBytes)} is {(long)MaxRecordIdBytes + MaxBucketIdBytes}; together they must be at most "
                + $"{Changelog.ChangelogLimits.MaxIdBytesTogether}, what the indexes of sync_bucket_edges hold next to the longest table name");
        }
        if (MaxBatchBytes < 1024)
            problems.Add($"{nameof(MaxBatchBytes)} is {MaxBatchBytes}; it must be at least 1024");
        if (BatchLinger < TimeSpan.Zero || BatchLinger > TimeSpan.FromMinutes(1))
            problems.Add($"{nameof(BatchLinger)} is {BatchLinger}; it must be between 0 and 1 minute");
        if (WalBufferBytes < 64 * 1024)
            problems.Add($"{nameof(WalBufferBytes)} is {WalBufferBytes}; it must be at least 65536");
        if (StatusInterval < TimeSpan.FromMilliseconds(100) || StatusInterval > TimeSpan.FromHours(1))
            problems.Add($"{nameof(StatusInterval)} is {StatusInterval}; it must be between 100 ms and 1 hour");
        if (SlowBatchThreshold <= TimeSpan.Zero)
            problems.Add($"{nameof(SlowBatchThreshold)} is {SlowBatchThreshold}; it must be positive");
        if (SpillDirectory is not null && (string.IsNullOrWhiteSpace(SpillDirectory) || SpillDirectory.AsSpan().IndexOfAny(Path.GetInvalidPathChars()) >= 0))
            problems.Add($"{nameof(SpillDirectory)} '{SpillDirectory}' is not a usable directory path; leave it unset for the temporary directory");
        if (MaxSpillBytes != 0 && MaxSpillBytes < 1024 * 1024)
            problems.Add($"{nameof(MaxSpillBytes)} is {MaxSpillBytes}; it must be 0 (no cap) or at least 1 MiB (1048576)");
        if (MaxReconnectDelay < TimeSpan.FromMilliseconds(100))
            problems.Add($"{nameof(MaxReconnectDelay)} is {MaxReconnectDelay}; it must be at least 100 ms");
        FindHeartbeatSlotAndMessageProblems(problems);
        FindTimeoutProblems(problems);
        FindCompactionProblems(problems);
        if (Tables is null)
            problems.Add($"{nameof(Tables)} is required");
        else
        {
            try
            {
                Tables.Validate();
            }
            catch (ArgumentException e)
            {
                problems.Add($"{nameof(Tables)}: {e.Message}");
            }
            if (BinaryTupleMode && Tables.FirstOrDefault(t => t.DecodeAllColumns || Tables.BucketFunctionOf(t) is not null) is { } wholeRow)
            {
                problems.Add($"{nameof(BinaryTupleMode)} cannot be combined with the whole-row decoding of {wholeRow} (a BucketFunction or DecodeAllColumns): "
                    + "the row's JSON needs every column's text form, which binary mode does not give for every type; turn one of them off");
            }
        }
        return problems;
    }

    /// <summary>The changelog connection string (or the source one, without it) names the sidecar tables' schema first in its Search Path, if it has one.</summary>
    private void CheckChangelogSchema(List<string> problems)
    {
        var (name, value) = ChangelogConnectionString is null ? (nameof(ConnectionString), ConnectionString) : (nameof(ChangelogConnectionString), ChangelogConnectionString);
        try
        {
            if (!string.IsNullOrWhiteSpace(value) && Postgres.SessionSearchPath.Problem(new NpgsqlConnectionStringBuilder(value).SearchPath) is { } problem)
                problems.Add($"{name} cannot name the changelog schema: {problem}");
        }
        catch (ArgumentException)
        {
            // Not a connection string: CheckConnectionString says so.
        }
    }

    private static void CheckConnectionString(List<string> problems, string name, string? value)
    {
        if (string.IsNullOrWhiteSpace(value))
        {
            problems.Add($"{name} is required");
            return;
        }
        try
        {
            _ = new NpgsqlConnectionStringBuilder(value);
        }
        catch (ArgumentException e)
        {
            // The builder's message never includes the password.
            problems.Add($"{name} is not a valid connection string: {e.Message}");
        }
    }
}
