using System.Diagnostics.Metrics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using Synchro.Pipeline.Buckets;
using Synchro.Pipeline.Registry;

namespace Synchro.Pipeline.Pipeline;

/// <summary>What a <see cref="WalPipeline"/> reads, where it writes, and its limits.</summary>
/// <remarks>Checked when the pipeline is created (<see cref="Validate"/>); each message names the bad option.</remarks>
public sealed class WalPipelineOptions
{
    /// <summary>Connection string of the source database (the one with the publication and the slot).</summary>
    public string ConnectionString { get; set; } = "";

    /// <summary>Connection string of the database holding the sidecar tables. Default: the source database.</summary>
    public string? ChangelogConnectionString { get; set; }

    /// <summary>The logical replication slot (pgoutput). Lower-case letters, digits and underscores.</summary>
    public string SlotName { get; set; } = "";

    /// <summary>The publication that covers the registered tables.</summary>
    public string PublicationName { get; set; } = "";

    /// <summary>Create the slot when it does not exist. Default true.</summary>
    public bool CreateSlotIfMissing { get; set; } = true;

    /// <summary>The tables whose changes reach the changelog.</summary>
    public TableRegistry Tables { get; set; } = new();

    /// <summary>Decides buckets. Default: <see cref="DefaultBucketAssigner"/> (owner/bucket column, then parent chain).</summary>
    public IBucketAssigner? BucketAssigner { get; set; }

    /// <summary>A batch is cut at the first transaction end after this many changes (a larger transaction is written in chunks of this size). Default 10,000.</summary>
    public int MaxBatchRows { get; set; } = 10_000;

    /// <summary>A batch is cut at the first transaction end after this many bytes of pgoutput. Default 8 MiB.</summary>
    public long MaxBatchBytes { get; set; } = 8 * 1024 * 1024;

    /// <summary>How long whole transactions may wait for more before their batch is written. Default 20 ms.</summary>
    public TimeSpan BatchLinger { get; set; } = TimeSpan.FromMilliseconds(20);

    /// <summary>WAL bytes buffered between the socket and the decoder before reading pauses. Default 16 MiB.</summary>
    public long WalBufferBytes { get; set; } = 16 * 1024 * 1024;

    /// <summary>How often a status update is sent to the server. Default 10 s (the reference's StandbyTimeout).</summary>
    public TimeSpan StatusInterval { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>The longest wait between reconnection attempts after a lost connection. Default 30 s.</summary>
    public TimeSpan MaxReconnectDelay { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>A batch that takes longer than this to write is logged as a warning. Default 5 s.</summary>
    public TimeSpan SlowBatchThreshold { get; set; } = TimeSpan.FromSeconds(5);

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
    /// emptied at every connection. Default: <c>synchro-pipeline-spill</c> under the system's temporary directory.
    /// </summary>
    public string? SpillDirectory { get; set; }

    /// <summary>Logging; categories <c>Synchro.Pipeline</c> (lifecycle) and <c>Synchro.Pipeline.Reader</c>, <c>.Decoder</c>, <c>.Writer</c>, <c>.Committer</c>. Default: none.</summary>
    public ILoggerFactory LoggerFactory { get; set; } = NullLoggerFactory.Instance;

    /// <summary>Creates the <c>Synchro.Pipeline</c> meter (the DI container's factory when hosted). Default: a meter of the pipeline's own.</summary>
    public IMeterFactory? MeterFactory { get; set; }

    /// <summary>Load harness only: batches are dropped instead of written, so a run measures reading and decoding alone.</summary>
    internal bool DiscardWrites { get; set; }

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
        if (MaxReconnectDelay < TimeSpan.FromMilliseconds(100))
            problems.Add($"{nameof(MaxReconnectDelay)} is {MaxReconnectDelay}; it must be at least 100 ms");
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
        }
        return problems;
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
