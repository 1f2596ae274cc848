using Synchro.Pipeline.Postgres;

namespace Synchro.Pipeline.Compaction;

/// <summary>What <see cref="ChangelogCompactor"/> removes and how much it does at a time.</summary>
public sealed class ChangelogCompactionOptions
{
    /// <summary>The default <see cref="DeleteRetention"/>: 7 days.</summary>
    public static readonly TimeSpan DefaultDeleteRetention = TimeSpan.FromDays(7);

    /// <summary>
    /// How long a delete row that is the latest row of its record in its bucket is kept, by its <c>created_at</c>. Older
    /// ones are removed, and the bucket's horizon raised past them: a client whose cursor for the bucket is still below
    /// resyncs the bucket from a snapshot. Default 7 days; <see cref="TimeSpan.Zero"/> removes every such delete the run sees.
    /// </summary>
    /// <remarks>Clients that pull at least this often never resync because of compaction.</remarks>
    public TimeSpan DeleteRetention { get; set; } = DefaultDeleteRetention;

    /// <summary>
    /// Rows of one bucket read, and removed, per transaction. Default 5,000. Bounds the time a chunk's transaction takes
    /// and the memory of its row buffer.
    /// </summary>
    public int ChunkRows { get; set; } = 5_000;

    /// <summary>
    /// The most records (table and record id) of one bucket whose latest row a run keeps track of. Default 1,000,000 (about
    /// 100 MB for record ids of 20 characters). A bucket with more records is compacted only for its newest ones and logged
    /// as partly compacted (event 7052); nothing a client needs is removed either way.
    /// </summary>
    public int MaxTrackedRecords { get; set; } = 1_000_000;

    /// <summary>The longest one statement of a run may run (the server cancels it past this). Default 1 minute.</summary>
    public TimeSpan StatementTimeout { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>
    /// The changelog schema: null for the one the data source's connection string names
    /// (<see cref="Changelog.ChangelogSchema.SchemaOf"/>).
    /// </summary>
    public string? Schema { get; set; }

    /// <summary>
    /// Visit every bucket, not only those with rows after what the last complete run covered. Default false. For a run
    /// after buckets were left partly compacted with a raised <see cref="MaxTrackedRecords"/>.
    /// </summary>
    public bool Full { get; set; }

    /// <summary>Checks every option.</summary>
    /// <exception cref="ArgumentException">An option is invalid; the message names it and says what is allowed.</exception>
    public void Validate()
    {
        var problems = FindProblems();
        if (problems.Count > 0)
            throw new ArgumentException("Invalid ChangelogCompactionOptions:" + string.Concat(problems.Select(p => Environment.NewLine + " - " + p)));
    }

    /// <summary>Every invalid option, one message each; empty when the options are valid.</summary>
    internal List<string> FindProblems()
    {
        var problems = new List<string>();
        if (DeleteRetention < TimeSpan.Zero || DeleteRetention > TimeSpan.FromDays(36_500))
            problems.Add($"{nameof(DeleteRetention)} is {DeleteRetention}; it must be between 0 and 100 years");
        if (ChunkRows is < 1 or > 1_000_000)
            problems.Add($"{nameof(ChunkRows)} is {ChunkRows}; it must be between 1 and 1,000,000");
        if (MaxTrackedRecords is < 1 or > 100_000_000)
            problems.Add($"{nameof(MaxTrackedRecords)} is {MaxTrackedRecords}; it must be between 1 and 100,000,000");
        if (StatementTimeout < TimeSpan.FromMilliseconds(1) || StatementTimeout > StatementTimeouts.Longest)
            problems.Add($"{nameof(StatementTimeout)} is {StatementTimeout}; it must be between 1 ms and 1 day");
        if (Schema is not null && !PgIdentifier.IsValidObjectName(Schema))
            problems.Add($"{nameof(Schema)} is not a schema name: use 1 to 63 bytes of UTF-8 without NUL, or null for the connection string's");
        return problems;
    }

    /// <summary>A copy, so a run is not affected by changes made while it runs.</summary>
    internal ChangelogCompactionOptions Clone() => (ChangelogCompactionOptions)MemberwiseClone();
}
