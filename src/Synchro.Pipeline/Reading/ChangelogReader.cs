using System.Globalization;
using Npgsql;
using Synchro.Pipeline.Changelog;
using Synchro.Pipeline.Postgres;

namespace Synchro.Pipeline.Reading;

/// <summary>
/// Reads the changelog for an application's sync endpoint: the rows after a client's cursor for its buckets
/// (<see cref="ReadAsync"/>), and the current members of buckets to start or resync a client from
/// (<see cref="ReadSnapshotAsync"/>).
/// </summary>
/// <remarks>
/// <para>
/// Thread-safe: create one per application and share it. Each call opens a connection from the data source, runs one to
/// a few short statements, and returns it; no transaction is held between calls or pages.
/// </para>
/// <para>
/// The role of the data source needs <c>SELECT</c> on <c>sync_changelog</c>, <c>sync_bucket_edges</c>,
/// <c>sync_bucket_horizons</c> and the sequence of <c>sync_changelog.seq</c> (docs/changelog.md).
/// </para>
/// </remarks>
public sealed partial class ChangelogReader
{
    private readonly NpgsqlDataSource _dataSource;
    private readonly ChangelogLimits _limits;
    private readonly string _schema;
    private readonly string _changelogTable;
    private readonly int? _commandTimeoutSeconds;
    private readonly int _maxBuckets;
    private readonly int _maxLimit;
    private readonly TableNameCache _tables = new();

    /// <summary>Creates a reader of the changelog the data source's database holds.</summary>
    /// <param name="dataSource">Connections to the changelog database; the reader never changes its settings.</param>
    /// <param name="options">Settings; null for the defaults.</param>
    /// <exception cref="ArgumentNullException"><paramref name="dataSource"/> is null.</exception>
    /// <exception cref="ArgumentException">An option is out of range, or the data source's <c>Search Path</c> names no schema first.</exception>
    public ChangelogReader(NpgsqlDataSource dataSource, ChangelogReaderOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(dataSource);
        options ??= new ChangelogReaderOptions();
        options.Validate();
        _dataSource = dataSource;
        _schema = options.Schema ?? ChangelogSchema.SchemaOf(dataSource.ConnectionString);
        if (!PgIdentifier.IsValidObjectName(_schema))
            throw new ArgumentException($"ChangelogReaderOptions.Schema '{_schema}' is not a schema name (1 to 63 bytes of UTF-8, no NUL).", nameof(options));
        _limits = new ChangelogLimits(ChangelogLimits.DefaultMaxRecordIdBytes, options.MaxBucketIdBytes);
        _maxBuckets = options.MaxBuckets;
        _maxLimit = options.MaxLimit;
        _commandTimeoutSeconds = options.CommandTimeout is { } timeout ? (int)Math.Ceiling(timeout.TotalSeconds) : null;
        // The schema is the only name spliced into the SQL: validated above and quoted, so it can only name a schema.
        var schema = PgIdentifier.Quote(_schema);
        _changelogTable = schema + ".sync_changelog";
        _changesSql = ChangesSql(schema);
        _snapshotSql = SnapshotSql(schema);
    }

    /// <summary>The schema of the changelog tables this reader reads.</summary>
    public string Schema => _schema;

    private void CheckBuckets(IReadOnlyList<string> buckets)
    {
        ArgumentNullException.ThrowIfNull(buckets);
        if (buckets.Count == 0)
            throw new ArgumentException("No buckets were given; pass the ids of the buckets the client syncs (at least one).", nameof(buckets));
        if (buckets.Count > _maxBuckets)
        {
            throw new ArgumentException(string.Create(CultureInfo.InvariantCulture,
                $"{buckets.Count:N0} buckets were given, more than the {_maxBuckets:N0} one call may name (ChangelogReaderOptions.MaxBuckets); split them over several cursors, or raise the limit."), nameof(buckets));
        }
        var seen = new HashSet<string>(buckets.Count, StringComparer.Ordinal);
        for (var i = 0; i < buckets.Count; i++)
        {
            var bucket = buckets[i];
            if (string.IsNullOrEmpty(bucket))
                throw new ArgumentException(string.Create(CultureInfo.InvariantCulture, $"Bucket {i} is null or empty; the changelog has no such bucket: leave it out."), nameof(buckets));
            if (_limits.BucketIdProblem(bucket) is { } problem)
                throw new ArgumentException($"Bucket {i.ToString(CultureInfo.InvariantCulture)}: {problem}; leave it out (the changelog never holds it), or raise ChangelogReaderOptions.MaxBucketIdBytes to the pipeline's MaxBucketIdBytes.", nameof(buckets));
            if (!seen.Add(bucket))
                throw new ArgumentException($"Bucket '{PgText.Excerpt(bucket, 40)}' is given twice; pass each bucket once.", nameof(buckets));
        }
    }

    private void CheckLimit(int limit)
    {
        if (limit < 1 || limit > _maxLimit)
        {
            throw new ArgumentOutOfRangeException(nameof(limit), limit, string.Create(CultureInfo.InvariantCulture,
                $"The limit must be between 1 and {_maxLimit:N0} (ChangelogReaderOptions.MaxLimit)."));
        }
    }

    private async Task<NpgsqlConnection> OpenAsync(CancellationToken cancellationToken)
        => await _dataSource.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);

    // Planner settings of the reads, local to the batch's transaction (a batch runs in one implicit transaction). A bucket
    // id is a parameter, so the planner estimates every bucket at the average size; where that is below a page it
    // would rather read the whole bucket with a bitmap scan and sort it, which for a hot bucket is the whole backlog per
    // page. Without bitmap scans the ordered index range scan is the only cheap plan left.
    internal const string PlannerSettings = "SELECT pg_catalog.set_config('enable_bitmapscan', 'off', true)";

    /// <summary>A batch of the planner settings and <paramref name="sql"/>; add the statement's parameters to <see cref="NpgsqlBatch.BatchCommands"/>[1].</summary>
    private NpgsqlBatch Batch(NpgsqlConnection connection, string sql)
    {
        var batch = new NpgsqlBatch(connection)
        {
            BatchCommands = { new NpgsqlBatchCommand(PlannerSettings), new NpgsqlBatchCommand(sql) },
        };
        if (_commandTimeoutSeconds is { } seconds)
            batch.Timeout = seconds;
        return batch;
    }

    /// <summary>Runs <paramref name="batch"/> and moves its reader to the statement's rows.</summary>
    private static async Task<NpgsqlDataReader> ExecuteAsync(NpgsqlBatch batch, CancellationToken cancellationToken)
    {
        var reader = await batch.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        await reader.NextResultAsync(cancellationToken).ConfigureAwait(false);
        return reader;
    }

    /// <summary>A server error of a read as an exception that says what to do, or null to rethrow it as it is.</summary>
    private InvalidOperationException? Explain(PostgresException e)
    {
        var schema = PgIdentifier.Quote(_schema);
        return e.SqlState switch
        {
            PostgresErrorCodes.UndefinedTable or PostgresErrorCodes.InvalidSchemaName or PostgresErrorCodes.UndefinedObject => new InvalidOperationException(
                $"The changelog tables are not in schema {schema} of this database ({e.MessageText}): run 'synchro-pipeline migrate' with the pipeline's changelog connection string, or set ChangelogReaderOptions.Schema (or the data source's Search Path) to the schema the pipeline writes.", e),
            PostgresErrorCodes.InsufficientPrivilege => new InvalidOperationException(
                $"The reader's role may not read the changelog ({e.MessageText}): grant it SELECT on {schema}.sync_changelog, {schema}.sync_bucket_edges, {schema}.sync_bucket_horizons and the sequence {schema}.sync_changelog_seq_seq (docs/changelog.md).", e),
            _ => null,
        };
    }

    /// <summary>The table name in column <paramref name="ordinal"/>, from the cache: read into <paramref name="scratch"/>, allocated only the first time.</summary>
    private string TableName(NpgsqlDataReader reader, int ordinal, char[] scratch)
    {
        var length = (int)reader.GetChars(ordinal, 0, null, 0, 0);
        // A schema-qualified name is at most 127 characters: longer ones are not expected, and are read as strings.
        if (length > scratch.Length)
            return _tables.Get(reader.GetString(ordinal));
        reader.GetChars(ordinal, 0, scratch, 0, length);
        return _tables.Get(scratch.AsSpan(0, length));
    }
}
