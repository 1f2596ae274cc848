using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using NpgsqlTypes;
using Synchro.Pipeline.Changelog;
using Synchro.Pipeline.Diagnostics;
using Synchro.Pipeline.Postgres;

namespace Synchro.Pipeline.Compaction;

/// <summary>
/// Keeps the changelog small without ever leaving a client wrong: per bucket, removes the rows a later row of the same
/// record supersedes, and the latest delete rows older than <see cref="ChangelogCompactionOptions.DeleteRetention"/>,
/// raising the bucket's horizon (<c>sync_bucket_horizons</c>) in the same transaction, so a reader behind it resyncs.
/// </summary>
/// <remarks>
/// <para>
/// A run fixes the high-water mark P (the largest <c>seq</c>) and the purge mark C (the largest <c>seq</c> older than the
/// retention) when it starts, and touches only rows at or below P: rows the writer commits meanwhile are left for the next
/// run. It visits the buckets that have rows after what the last complete run covered (<c>sync_compaction_state</c>),
/// reads each one's rows newest first in chunks of <see cref="ChangelogCompactionOptions.ChunkRows"/>, and removes what a
/// chunk found in one short transaction. It only deletes rows (it never writes or reorders one), and takes no lock but
/// the row-level one of a delete, so the writer never waits for it. Memory is bounded by the chunk and by
/// <see cref="ChangelogCompactionOptions.MaxTrackedRecords"/>, whatever the changelog's size.
/// </para>
/// <para>
/// Stopping a run at any point (cancellation, a lost connection) leaves a correct changelog: every removal is justified by
/// rows and horizons already committed. The next run visits again what the stopped one had not finished.
/// </para>
/// <para>
/// One run at a time per changelog: a session advisory lock keyed by the schema; a second run finds it taken and returns
/// at once (<see cref="ChangelogCompactionResult.AnotherRunning"/>). The role needs <c>SELECT</c> and <c>DELETE</c> on
/// <c>sync_changelog</c>, <c>SELECT</c>, <c>INSERT</c> and <c>UPDATE</c> on <c>sync_bucket_horizons</c> and
/// <c>sync_compaction_state</c>. Thread-safe; runs of one instance are serialised by the same lock.
/// </para>
/// </remarks>
public sealed partial class ChangelogCompactor
{
    /// <summary>The log category: <c>Synchro.Pipeline.Compaction</c>.</summary>
    public const string LogCategory = "Synchro.Pipeline.Compaction";

    /// <summary>The lock's first key: "SYNK" in ASCII (the changelog writer's is "SYNW").</summary>
    internal const int LockClass = 0x53594E4B;

    // Buckets listed per round trip of the bucket scan; bounds the client's memory whatever the number of buckets.
    private const int BucketPageSize = 1_000;

    private const string TryLockSql = "SELECT pg_catalog.pg_try_advisory_lock($1, pg_catalog.hashtext($2))";
    private const string UnlockSql = "SELECT pg_catalog.pg_advisory_unlock($1, pg_catalog.hashtext($2))";
    private const string TimeoutSql = "SELECT pg_catalog.set_config('statement_timeout', $1, false)";

    // How long the unlock at the end of a run may take before the session is given up (and the lock with it).
    private static readonly TimeSpan s_unlockTimeout = TimeSpan.FromSeconds(5);

    private readonly NpgsqlDataSource _dataSource;
    private readonly ChangelogCompactionOptions _options;
    private readonly string _schema;
    private readonly Sql _sql;
    private readonly ILogger _logger;
    private readonly CompactionMetrics _metrics;

    /// <summary>A compactor of the changelog <paramref name="changelog"/> connects to.</summary>
    /// <param name="changelog">The changelog database; each run takes one connection of it for its duration.</param>
    /// <param name="options">What to remove and how much at a time; copied, so later changes do not apply.</param>
    /// <param name="loggerFactory">Logging (category <see cref="LogCategory"/>); null for none.</param>
    /// <exception cref="ArgumentException">An option is invalid, or the connection string's <c>Search Path</c> does not start with a schema name.</exception>
    public ChangelogCompactor(NpgsqlDataSource changelog, ChangelogCompactionOptions options, ILoggerFactory? loggerFactory = null)
        : this(changelog, options, loggerFactory, CompactionMetrics.Shared)
    {
    }

    internal ChangelogCompactor(NpgsqlDataSource changelog, ChangelogCompactionOptions options, ILoggerFactory? loggerFactory, CompactionMetrics metrics)
    {
        ArgumentNullException.ThrowIfNull(changelog);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _dataSource = changelog;
        _options = options.Clone();
        _schema = _options.Schema ?? ChangelogSchema.SchemaOf(changelog.ConnectionString);
        _sql = new Sql(PgIdentifier.Quote(_schema));
        _logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger(LogCategory);
        _metrics = metrics;
    }

    /// <summary>The changelog schema this compactor compacts.</summary>
    public string Schema => _schema;

    /// <summary>Runs one compaction of every bucket that needs one (see the class remarks).</summary>
    /// <param name="cancellationToken">Stops the run; what it committed stays, and the changelog is correct.</param>
    /// <returns>What the run did; <see cref="ChangelogCompactionResult.AnotherRunning"/> when another run held the changelog.</returns>
    /// <exception cref="WalPipelineException">The run failed (a statement timeout, missing privileges or tables); the message says what to do.</exception>
    /// <exception cref="NpgsqlException">The connection failed.</exception>
    public Task<ChangelogCompactionResult> CompactAsync(CancellationToken cancellationToken = default) => CompactAsync(cancellationToken, cancellationToken);

    /// <summary>
    /// Runs one compaction; <paramref name="stopping"/> ends it between chunks, <paramref name="aborting"/> cancels the
    /// statement in flight (the pipeline's two-step stop).
    /// </summary>
    internal async Task<ChangelogCompactionResult> CompactAsync(CancellationToken stopping, CancellationToken aborting)
    {
        var started = Stopwatch.GetTimestamp();
        var result = new ChangelogCompactionResult();
        try
        {
            var connection = await _dataSource.OpenConnectionAsync(aborting).ConfigureAwait(false);
            await using (connection.ConfigureAwait(false))
            {
                await ExecuteAsync(connection, TimeoutSql, aborting, StatementTimeouts.Milliseconds(_options.StatementTimeout)).ConfigureAwait(false);
                if (!await ScalarAsync<bool>(connection, TryLockSql, aborting, LockClass, _schema).ConfigureAwait(false))
                {
                    result.AnotherRunning = true;
                    _metrics.RunEnded("skipped");
                    LogAlreadyRunning(_logger, _schema);
                    return result;
                }
                try
                {
                    await RunAsync(connection, result, stopping, aborting).ConfigureAwait(false);
                }
                finally
                {
                    await UnlockAsync(connection).ConfigureAwait(false);
                }
            }
            result.Duration = Stopwatch.GetElapsedTime(started);
            _metrics.RunEnded(result.BucketsLeftPartial > 0 ? "partial" : "complete", result.Duration);
            LogFinished(_logger, _schema, result.BucketsVisited, result.SupersededRowsRemoved, result.DeletesRemoved, result.HorizonsRaised,
                result.BucketsLeftPartial, result.CompactedThroughSeq, result.PurgedThroughSeq, result.Duration.TotalSeconds);
            return result;
        }
        catch (Exception e) when (PostgresErrors.IsCancellation(e) && (stopping.IsCancellationRequested || aborting.IsCancellationRequested))
        {
            _metrics.RunEnded("stopped");
            throw;
        }
        catch (Exception e)
        {
            _metrics.RunEnded("failed");
            var failure = Describe(e);
            LogFailed(_logger, e, _schema, failure.Message);
            if (ReferenceEquals(failure, e))
                throw;
            throw failure;
        }
    }

    private async Task RunAsync(NpgsqlConnection connection, ChangelogCompactionResult result, CancellationToken stopping, CancellationToken aborting)
    {
        var (lastCompacted, lastPurged) = _options.Full ? (0L, 0L) : await LoadStateAsync(connection, aborting).ConfigureAwait(false);
        var (highWater, lowest, cutoff) = await MarksAsync(connection, aborting).ConfigureAwait(false);
        var purgeThrough = await PurgeMarkAsync(connection, lowest, highWater, cutoff, aborting).ConfigureAwait(false);
        result.CompactedThroughSeq = highWater;
        result.PurgedThroughSeq = purgeThrough;

        using var keys = new RecordKeySet(_options.MaxTrackedRecords);
        var visit = new List<string>(BucketPageSize);
        string? after = null;
        while (true)
        {
            stopping.ThrowIfCancellationRequested();
            visit.Clear();
            var listed = await ListBucketsAsync(connection, after, lastCompacted, highWater, lastPurged, purgeThrough, visit, aborting).ConfigureAwait(false);
            if (listed is null)
                break;
            after = listed;
            foreach (var bucket in visit)
                await CompactBucketAsync(connection, bucket, highWater, purgeThrough, keys, result, stopping, aborting).ConfigureAwait(false);
        }
        // Only a run that visited every bucket it had to may say so; a stopped one leaves the state as it was.
        await SaveStateAsync(connection, highWater, Math.Max(purgeThrough, lastPurged), aborting).ConfigureAwait(false);
    }

    private async Task<(long Compacted, long Purged)> LoadStateAsync(NpgsqlConnection connection, CancellationToken ct)
    {
        await using var command = new NpgsqlCommand(_sql.LoadState, connection);
        await using var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
        return await reader.ReadAsync(ct).ConfigureAwait(false) ? (reader.GetInt64(0), reader.GetInt64(1)) : (0, 0);
    }

    private Task SaveStateAsync(NpgsqlConnection connection, long compacted, long purged, CancellationToken ct)
        => ExecuteAsync(connection, _sql.SaveState, ct, compacted, purged);

    /// <summary>The high-water mark P, the lowest <c>seq</c>, and the retention's cut-off time, read in one statement.</summary>
    private async Task<(long HighWater, long Lowest, DateTime Cutoff)> MarksAsync(NpgsqlConnection connection, CancellationToken ct)
    {
        await using var command = new NpgsqlCommand(_sql.Marks, connection);
        command.Parameters.Add(new NpgsqlParameter<TimeSpan> { TypedValue = _options.DeleteRetention, NpgsqlDbType = NpgsqlDbType.Interval });
        await using var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
        await reader.ReadAsync(ct).ConfigureAwait(false);
        return (reader.GetInt64(0), reader.GetInt64(1), reader.GetFieldValue<DateTime>(2));
    }

    /// <summary>
    /// C: the largest <c>seq</c> at or below <paramref name="highWater"/> whose <c>created_at</c> is before
    /// <paramref name="cutoff"/>, 0 when none, by binary search over the primary key (about 2 log2(P) probes).
    /// </summary>
    /// <remarks>
    /// Relies on <c>created_at</c> not decreasing with <c>seq</c>, which the one writer's serial transactions give. Where it
    /// does not hold (a clock stepped back, a replay transaction that waited for the writer's lock) the mark is off by those
    /// rows: a delete is kept a little longer or removed a little sooner than the retention says, and a reader behind the
    /// horizon is told to resync either way.
    /// </remarks>
    private async Task<long> PurgeMarkAsync(NpgsqlConnection connection, long lowest, long highWater, DateTime cutoff, CancellationToken ct)
    {
        await using var command = new NpgsqlCommand(_sql.Probe, connection);
        var from = new NpgsqlParameter<long>();
        var to = new NpgsqlParameter<long> { TypedValue = highWater };
        command.Parameters.Add(from);
        command.Parameters.Add(to);
        long best = 0, low = lowest, high = highWater;
        // Invariant: every row below low is before the cut-off (best is the last of them), every row above high is not.
        while (low <= high && low > 0)
        {
            var middle = low + ((high - low) / 2);
            from.TypedValue = middle;
            to.TypedValue = high;
            await using var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
            if (!await reader.ReadAsync(ct).ConfigureAwait(false))
            {
                high = middle - 1;
                continue;
            }
            var seq = reader.GetInt64(0);
            if (reader.GetFieldValue<DateTime>(1) < cutoff)
            {
                best = seq;
                low = seq + 1;
            }
            else
            {
                high = middle - 1;
            }
        }
        return best;
    }

    /// <summary>
    /// The next page of buckets after <paramref name="after"/> (all of them, by a loose index scan of
    /// <c>(bucket_id, seq)</c>); those with rows to compact are added to <paramref name="visit"/>. Returns the page's last
    /// bucket, null when there are no more.
    /// </summary>
    private async Task<string?> ListBucketsAsync(NpgsqlConnection connection, string? after, long lastCompacted, long highWater, long lastPurged, long purgeThrough,
        List<string> visit, CancellationToken ct)
    {
        await using var command = new NpgsqlCommand(after is null ? _sql.FirstBuckets : _sql.NextBuckets, connection);
        command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = lastCompacted });
        command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = highWater });
        command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = lastPurged });
        command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = purgeThrough });
        command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = BucketPageSize });
        if (after is not null)
            command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = after, NpgsqlDbType = NpgsqlDbType.Text });
        string? last = null;
        await using var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
        while (await reader.ReadAsync(ct).ConfigureAwait(false))
        {
            last = reader.GetString(0);
            if (reader.GetBoolean(1))
                visit.Add(last);
        }
        return last;
    }

    /// <summary>Compacts one bucket's rows at or below <paramref name="highWater"/>, newest first, a chunk per transaction.</summary>
    private async Task CompactBucketAsync(NpgsqlConnection connection, string bucket, long highWater, long purgeThrough, RecordKeySet keys,
        ChangelogCompactionResult result, CancellationToken stopping, CancellationToken aborting)
    {
        keys.Clear();
        result.BucketsVisited++;
        var partial = false;
        var horizonRaised = false;
        var removals = new List<long>(Math.Min(_options.ChunkRows, 1024));
        var before = highWater + 1;
        while (true)
        {
            stopping.ThrowIfCancellationRequested();
            removals.Clear();
            long superseded = 0, purged = 0, horizon = 0;
            var rows = 0;
            await using (var read = new NpgsqlCommand(_sql.ReadChunk, connection))
            {
                read.Parameters.Add(new NpgsqlParameter<string> { TypedValue = bucket, NpgsqlDbType = NpgsqlDbType.Text });
                read.Parameters.Add(new NpgsqlParameter<long> { TypedValue = before });
                read.Parameters.Add(new NpgsqlParameter<int> { TypedValue = _options.ChunkRows });
                await using var reader = await read.ExecuteReaderAsync(aborting).ConfigureAwait(false);
                while (await reader.ReadAsync(aborting).ConfigureAwait(false))
                {
                    rows++;
                    var seq = reader.GetInt64(0);
                    before = seq;
                    keys.Read(reader, 1, 2);
                    // Newest first: a record seen before has a later row here, so this one is superseded.
                    if (keys.Contains())
                    {
                        removals.Add(seq);
                        superseded++;
                        continue;
                    }
                    if (keys.Full)
                    {
                        // Not known whether a later row of this record exists: kept.
                        partial = true;
                        continue;
                    }
                    keys.Add();
                    if (reader.GetInt16(3) == (short)ChangeOperation.Delete && seq <= purgeThrough)
                    {
                        removals.Add(seq);
                        purged++;
                        horizon = Math.Max(horizon, seq);
                    }
                }
            }
            if (removals.Count > 0)
                await RemoveAsync(connection, bucket, removals, horizon, aborting).ConfigureAwait(false);
            result.SupersededRowsRemoved += superseded;
            result.DeletesRemoved += purged;
            horizonRaised |= horizon > 0;
            _metrics.Removed(superseded, purged);
            if (rows < _options.ChunkRows)
                break;
        }
        if (horizonRaised)
            result.HorizonsRaised++;
        if (partial)
        {
            result.BucketsLeftPartial++;
            LogBucketPartial(_logger, bucket, _options.MaxTrackedRecords);
        }
    }

    /// <summary>One transaction: the chunk's rows removed and, when it removed deletes, the bucket's horizon raised past them.</summary>
    private async Task RemoveAsync(NpgsqlConnection connection, string bucket, List<long> seqs, long horizon, CancellationToken ct)
    {
        // A batch without a transaction of its own runs as one implicit transaction: both or neither.
        await using var batch = new NpgsqlBatch(connection);
        batch.BatchCommands.Add(new NpgsqlBatchCommand(_sql.Remove)
        {
            Parameters =
            {
                new NpgsqlParameter<string> { TypedValue = bucket, NpgsqlDbType = NpgsqlDbType.Text },
                new NpgsqlParameter<long[]> { TypedValue = [.. seqs] },
            },
        });
        if (horizon > 0)
        {
            batch.BatchCommands.Add(new NpgsqlBatchCommand(_sql.RaiseHorizon)
            {
                Parameters =
                {
                    new NpgsqlParameter<string> { TypedValue = bucket, NpgsqlDbType = NpgsqlDbType.Text },
                    new NpgsqlParameter<long> { TypedValue = horizon },
                },
            });
        }
        await batch.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
    }

    private async Task UnlockAsync(NpgsqlConnection connection)
    {
        using var timeout = new CancellationTokenSource(s_unlockTimeout);
        try
        {
            await ExecuteAsync(connection, UnlockSql, timeout.Token, LockClass, _schema).ConfigureAwait(false);
        }
        catch (Exception e) when (e is NpgsqlException or OperationCanceledException or InvalidOperationException)
        {
            // The session may still hold the lock: keep it out of the pool, so closing it ends the session and the lock.
            NpgsqlConnection.ClearPool(connection);
        }
    }

    private Exception Describe(Exception error)
    {
        var what = $"Compaction of the changelog in schema {PgIdentifier.Quote(_schema)} stopped";
        const string Kept = "What it removed stays removed and the changelog is correct; the next run redoes the rest.";
        return error switch
        {
            PostgresException { SqlState: PostgresErrorCodes.QueryCanceled } pg when PostgresErrors.IsStatementTimeout(pg, _options.StatementTimeout, TimeSpan.Zero)
                => new WalPipelineException($"{what}: a statement ran longer than its timeout ({_options.StatementTimeout}). {Kept} Lower ChunkRows "
                    + "(--chunk-rows), or raise the compaction's StatementTimeout, and look for what slows the changelog database.", error),
            PostgresException { SqlState: PostgresErrorCodes.InsufficientPrivilege } pg
                => new WalPipelineException($"{what}: {pg.MessageText}. The compacting role needs GRANT SELECT, DELETE ON sync_changelog and "
                    + "GRANT SELECT, INSERT, UPDATE ON sync_bucket_horizons, sync_compaction_state (in that schema).", error),
            PostgresException { SqlState: PostgresErrorCodes.UndefinedTable } pg
                => new WalPipelineException($"{what}: {pg.MessageText}. Run synchro-pipeline migrate (or ChangelogSchema.EnsureAsync) to create the sidecar tables "
                    + "sync_bucket_horizons and sync_compaction_state.", error),
            PostgresException pg => new WalPipelineException($"{what}: {PostgresErrors.OneLine(pg)}. {Kept}", error),
            _ => error,
        };
    }

    private static async Task ExecuteAsync(NpgsqlConnection connection, string sql, CancellationToken ct, params object[] values)
    {
        await using var command = Command(connection, sql, values);
        await command.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
    }

    private static async Task<T> ScalarAsync<T>(NpgsqlConnection connection, string sql, CancellationToken ct, params object[] values)
    {
        await using var command = Command(connection, sql, values);
        return (T)(await command.ExecuteScalarAsync(ct).ConfigureAwait(false))!;
    }

    private static NpgsqlCommand Command(NpgsqlConnection connection, string sql, object[] values)
    {
        var command = new NpgsqlCommand(sql, connection);
        foreach (var value in values)
        {
            command.Parameters.Add(value switch
            {
                int i => new NpgsqlParameter<int> { TypedValue = i },
                long l => new NpgsqlParameter<long> { TypedValue = l },
                string s => new NpgsqlParameter<string> { TypedValue = s, NpgsqlDbType = NpgsqlDbType.Text },
                _ => throw new ArgumentException("unsupported parameter type", nameof(values)),
            });
        }
        return command;
    }

    [LoggerMessage(EventId = EventIds.CompactionFinished, Level = LogLevel.Information,
        Message = "Compacted the changelog in schema {Schema}: {Buckets} bucket(s) visited, {Superseded} superseded row(s) and {Deletes} old delete row(s) removed, "
            + "{Horizons} horizon(s) raised, {Partial} bucket(s) left partly compacted; through seq {CompactedThrough}, deletes through seq {PurgedThrough}, in {Seconds:F1} s")]
    private static partial void LogFinished(ILogger logger, string schema, long buckets, long superseded, long deletes, long horizons, long partial,
        long compactedThrough, long purgedThrough, double seconds);

    [LoggerMessage(EventId = EventIds.CompactionAlreadyRunning, Level = LogLevel.Information,
        Message = "Another compaction of the changelog in schema {Schema} is running (it holds the compaction lock): this one did nothing")]
    private static partial void LogAlreadyRunning(ILogger logger, string schema);

    [LoggerMessage(EventId = EventIds.CompactionBucketPartial, Level = LogLevel.Warning,
        Message = "Bucket {Bucket} has more than {MaxTrackedRecords} records (MaxTrackedRecords): it was compacted only for its newest ones, and keeps "
            + "older superseded rows (nothing a client needs was removed). Raise MaxTrackedRecords where memory allows and run a full compaction (synchro-pipeline compact --full)")]
    private static partial void LogBucketPartial(ILogger logger, string bucket, int maxTrackedRecords);

    [LoggerMessage(EventId = EventIds.CompactionFailed, Level = LogLevel.Error, Message = "Compaction of the changelog in schema {Schema} failed: {Reason}")]
    private static partial void LogFailed(ILogger logger, Exception error, string schema, string reason);
}
