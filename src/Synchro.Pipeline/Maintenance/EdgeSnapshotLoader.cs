using System.Data;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using Microsoft.Extensions.Logging;
using Npgsql;
using Synchro.Pipeline.Buckets;
using Synchro.Pipeline.Diagnostics;
using Synchro.Pipeline.Protocol;
using Synchro.Pipeline.Registry;
using Synchro.Pipeline.Replication;
using Synchro.Pipeline.Changelog;
using Synchro.Pipeline.Decoding;
using Synchro.Pipeline.Postgres;

namespace Synchro.Pipeline.Maintenance;


/// <summary>
/// Populates <c>sync_bucket_edges</c> for the rows the registered tables hold as of a new slot's consistent point, read
/// from the snapshot the slot exported, so the first streamed change of an existing row finds the buckets it is in.
/// </summary>
/// <remarks>
/// <para>
/// Each table is read through a server-side cursor in chunks of at most <c>chunkRows</c> rows; each chunk goes through the
/// configured <see cref="IBucketAssigner"/> as inserts (exactly as a streamed insert would), with the snapshot's own
/// connection as <see cref="BucketAssignmentBatch.SourceConnection"/> so parent-chain lookups read the same snapshot, and
/// its edges go out by binary COPY on the changelog connection while the next chunk is read. Memory: one chunk of rows
/// and two chunks of edges at most, whatever the table size.
/// </para>
/// <para>
/// Invariant (exactly once): every chunk, the removal of older edges of the registered tables, and the slot's position
/// (its consistent point, replacing the pending marker) are written in ONE changelog transaction, so a load either
/// happened whole or left nothing; a start that finds the pending marker redoes it from a new slot.
/// </para>
/// <para>
/// No changelog rows: clients make their own initial copy from a bucket snapshot. So that no client goes on from state the
/// load does not show in the log, the load raises the horizon of every bucket past every row committed before it
/// (invariant 11): readers behind it are told to resync. Soft-deleted rows (non-null soft-delete column) get no
/// edges, as a streamed history of insert then soft delete would have left them. A rule failure, or an id longer than
/// the changelog takes (<see cref="ChangelogLimits"/>), is recorded in <c>sync_rule_failures</c> as an insert and the
/// load goes on.
/// </para>
/// </remarks>
internal sealed partial class EdgeSnapshotLoader(
    NpgsqlDataSource source,
    NpgsqlDataSource changelog,
    string slotName,
    TableRegistry registry,
    IBucketAssigner assigner,
    ChangelogLimits limits,
    int chunkRows,
    PipelineMetrics metrics,
    ILogger logger,
    Action<EdgeSnapshotProgress>? progress = null)
{
    /// <summary>Invariant 10: the load's writes carry the pipeline's replication origin when they go into the source database.</summary>
    public bool TagOwnWrites { get; init; }

    /// <summary>The changelog lock whose session the load writes on; null to write on a connection of <c>changelog</c>.</summary>
    public ChangelogLock? Lock { get; init; }

    /// <summary>
    /// A stop: the load gives up at the next chunk (nothing of it is kept). The database calls get the token of
    /// <see cref="LoadAsync(string, Lsn, CancellationToken)"/>, which a stop cancels only once this has had time to act, since Npgsql's cancellation of a
    /// command in flight can hold a process with inline socket completions for 15 s.
    /// </summary>
    public CancellationToken Stopping { get; init; }

    /// <summary>
    /// The statements' timeouts: <see cref="StatementKind.SnapshotChunk"/> for reading and writing a chunk,
    /// <see cref="StatementKind.Truncate"/> for the removal of earlier edges, the rules' own for theirs; null leaves the server's.
    /// </summary>
    public StatementTimeouts? Timeouts { get; init; }

    // The source connection's statement_timeout: chunks and rules take turns on it.
    private SessionTimeout? _readTimeout;

    // One cursor at a time, so one constant name.
    private const string CursorName = "synchro_initial_snapshot";

    // How often a table's progress is logged while it loads.
    private static readonly TimeSpan s_progressInterval = TimeSpan.FromSeconds(5);

    private static readonly UTF8Encoding s_utf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private readonly ChangeBatchPool _batches = new(capacity: 1);
    private readonly BucketIdCache _bucketIds = new();
    private readonly List<(RecordKey Record, string BucketId)>[] _edges = [[], []];
    private readonly List<RuleFailure>[] _failures = [[], []];
    private readonly BucketAssignmentPool _assignments = new();
    private byte[] _text = new byte[256];
    private long _totalRows;
    private long _totalEdges;
    private long _totalFailures;

    /// <summary>Loads the edges of every registered table as of <paramref name="snapshotName"/> and commits them with the position <paramref name="consistentPoint"/>.</summary>
    /// <param name="snapshotName">The exported snapshot; its replication connection must stay open and idle until this returns.</param>
    /// <param name="consistentPoint">The slot's consistent point, saved as its position.</param>
    /// <param name="ct">Cancels the load; nothing of it is kept.</param>
    /// <returns>The rows loaded.</returns>
    public async Task<long> LoadAsync(string snapshotName, Lsn consistentPoint, CancellationToken ct)
    {
        if (!ExportedSnapshotSlot.IsSnapshotName(snapshotName))
            throw new ArgumentException($"'{snapshotName}' is not an exported snapshot name.", nameof(snapshotName));
        var started = Stopwatch.GetTimestamp();
        // The load is a trace of its own, its chunks' spans under it.
        using var activity = PipelineTracing.Start(PipelineTracing.Snapshot);
        if (activity is { IsAllDataRequested: true })
        {
            activity.SetTag(PipelineTracing.SlotTag, slotName);
            activity.SetTag(PipelineTracing.EndLsnTag, consistentPoint.ToString());
        }
        try
        {
            await LoadWithOriginAsync(snapshotName, consistentPoint, ct).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            activity.Failed(e);
            throw;
        }
        if (activity is { IsAllDataRequested: true })
        {
            activity.SetTag(PipelineTracing.RowsReadTag, _totalRows);
            activity.SetTag(PipelineTracing.EdgesTag, _totalEdges);
            activity.SetTag(PipelineTracing.RuleFailuresTag, _totalFailures);
        }
        LogLoaded(logger, _totalRows, _totalEdges, _totalFailures, registry.Count, Stopwatch.GetElapsedTime(started).TotalSeconds, consistentPoint);
        return _totalRows;
    }

    private async Task LoadWithOriginAsync(string snapshotName, Lsn consistentPoint, CancellationToken ct)
    {
        // Invariant 9: with the changelog lock, the load writes on the session that holds it.
        await using var owned = Lock is null ? await changelog.OpenConnectionAsync(ct).ConfigureAwait(false) : null;
        var target = owned ?? await Lock!.EnsureAsync(ct).ConfigureAwait(false);
        await using var read = await source.OpenConnectionAsync(ct).ConfigureAwait(false);
        // Invariant 10: the load's writes carry the pipeline's origin, so decoding leaves them out.
        var origin = TagOwnWrites ? await OwnWritesOrigin.TrySetUpAsync(target, read, slotName, OwnWritesOrigin.Session.Snapshot, logger, ct).ConfigureAwait(false) : null;
        // A refused origin can reopen the connection, which ends the lock's session: the lock is taken again first.
        if (Lock is not null)
            target = await Lock.EnsureAsync(ct).ConfigureAwait(false);
        try
        {
            await LoadAsync(target, read, snapshotName, consistentPoint, ct).ConfigureAwait(false);
        }
        finally
        {
            if (origin is not null)
                await OwnWritesOrigin.ReleaseAsync(target, origin).ConfigureAwait(false);
        }
    }

    private async Task LoadAsync(NpgsqlConnection target, NpgsqlConnection read, string snapshotName, Lsn consistentPoint, CancellationToken ct)
    {
        await using var write = await target.BeginTransactionAsync(ct).ConfigureAwait(false);
        // The position committed here is what the slot is confirmed to, so the commit must be durable when it returns.
        await using (var durable = new NpgsqlCommand("SET LOCAL synchronous_commit = on", target, write))
            await durable.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        // The load is the whole truth at the consistent point: edges an earlier slot left for these tables go. That delete
        // grows with the tables like a TRUNCATE's, and has its timeout; every later statement has a chunk's.
        var started = Stopwatch.GetTimestamp();
        try
        {
            if (Timeouts is { } timeouts)
                await SessionTimeout.SetLocalAsync(target, timeouts, StatementKind.Truncate, ct).ConfigureAwait(false);
            await ChangelogStore.DeleteTableEdgesAsync(target, [.. registry.Select(t => t.ChangelogName).Distinct(StringComparer.Ordinal)], ct).ConfigureAwait(false);
            if (Timeouts is { } chunk)
                await SessionTimeout.SetLocalAsync(target, chunk, StatementKind.SnapshotChunk, ct).ConfigureAwait(false);
        }
        catch (PostgresException e) when (AsTimeout(e, StatementKind.Truncate, started, "The initial snapshot's removal of the registered tables' earlier bucket edges") is { } timeout)
        {
            throw timeout;
        }
        if (Timeouts is { } readTimeouts)
            _readTimeout = new SessionTimeout(read, readTimeouts);

        await using var snapshot = await read.BeginTransactionAsync(IsolationLevel.RepeatableRead, ct).ConfigureAwait(false);
        // SET TRANSACTION SNAPSHOT takes no parameter; the name was checked to be hex groups and dashes.
        await using (var use = new NpgsqlCommand($"SET TRANSACTION SNAPSHOT '{snapshotName}'", read, snapshot))
            await use.ExecuteNonQueryAsync(ct).ConfigureAwait(false);

        foreach (var table in registry)
            await LoadTableAsync(read, snapshot, target, table, ct).ConfigureAwait(false);

        started = Stopwatch.GetTimestamp();
        try
        {
            await ChangelogStore.RaiseLoadHorizonAsync(target, ct).ConfigureAwait(false);
            await ChangelogStore.SetSnapshotPositionAsync(target, slotName, consistentPoint, ct).ConfigureAwait(false);
            await write.CommitAsync(ct).ConfigureAwait(false);
        }
        catch (PostgresException e) when (AsTimeout(e, StatementKind.SnapshotChunk, started, "Committing the initial snapshot load") is { } timeout)
        {
            throw timeout;
        }
        await snapshot.RollbackAsync(ct).ConfigureAwait(false);
    }

    private async Task LoadTableAsync(NpgsqlConnection read, NpgsqlTransaction snapshot, NpgsqlConnection target, TableRegistration table, CancellationToken ct)
    {
        var started = Stopwatch.GetTimestamp();
        var lastLog = started;
        var estimate = await EstimateAsync(read, snapshot, table, ct).ConfigureAwait(false);
        await using (var declare = new NpgsqlCommand(DeclareSql(table), read, snapshot))
            await declare.ExecuteNonQueryAsync(ct).ConfigureAwait(false);

        var fetchSql = string.Create(CultureInfo.InvariantCulture, $"FETCH FORWARD {chunkRows} FROM {CursorName}");
        long rows = 0;
        var last = false;
        // Chunk N's edges are written on the changelog connection while chunk N+1 is read and assigned on the source
        // one: two edge lists alternate, and a write starts only after the one before it finished.
        var writing = Task.CompletedTask;
        var buffer = 0;
        try
        {
            var load = Activity.Current;
            while (!last)
            {
                Stopping.ThrowIfCancellationRequested();
                var (edges, failures) = (_edges[buffer], _failures[buffer]);
                var batch = _batches.Rent();
                // The chunk's span lasts until its edges are written (WriteAsync ends it); the next chunk's is its sibling.
                var chunk = PipelineTracing.StartChild(PipelineTracing.SnapshotChunk);
                try
                {
                    await FetchChunkAsync(read, snapshot, fetchSql, table, batch, ct).ConfigureAwait(false);
                    if (chunk is { IsAllDataRequested: true })
                    {
                        chunk.SetTag(PipelineTracing.SlotTag, slotName);
                        chunk.SetTag(PipelineTracing.TableTag, table.QualifiedName);
                        chunk.SetTag(PipelineTracing.RowsReadTag, batch.Count);
                    }
                    if (batch.Count == 0)
                    {
                        chunk?.Dispose();
                        break;
                    }
                    await AssignAsync(read, batch, edges, failures, ct).ConfigureAwait(false);
                    rows += batch.Count;
                    _totalRows += batch.Count;
                    last = batch.Count < chunkRows;
                }
                catch (Exception e)
                {
                    chunk.Failed(e);
                    chunk?.Dispose();
                    throw;
                }
                finally
                {
                    batch.Release();
                }
                try
                {
                    await writing.ConfigureAwait(false);
                }
                catch
                {
                    // The chunk before failed (its span says so); this one is never written.
                    chunk?.Dispose();
                    throw;
                }
                writing = WriteAsync(target, edges, failures, chunk, ct);
                Activity.Current = load;
                buffer ^= 1;
                metrics.SnapshotRowsLoaded(_totalRows);
                progress?.Invoke(new EdgeSnapshotProgress(table.QualifiedName, rows, estimate, _totalRows, TableDone: false));
                if (Stopwatch.GetElapsedTime(lastLog) >= s_progressInterval)
                {
                    lastLog = Stopwatch.GetTimestamp();
                    LogProgress(logger, table.QualifiedName, rows, estimate, Rate(rows, started));
                }
            }
            await writing.ConfigureAwait(false);
        }
        finally
        {
            // Never leave a COPY running on the changelog connection, whatever happened on the source side.
            await writing.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        await using (var close = new NpgsqlCommand($"CLOSE {CursorName}", read, snapshot))
            await close.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        metrics.SnapshotRowsLoaded(_totalRows);
        progress?.Invoke(new EdgeSnapshotProgress(table.QualifiedName, rows, estimate, _totalRows, TableDone: true));
        LogTableLoaded(logger, table.QualifiedName, rows, estimate, Rate(rows, started));
    }

    /// <summary><see cref="FetchAsync"/> under <see cref="StatementKind.SnapshotChunk"/>'s timeout.</summary>
    private async Task FetchChunkAsync(NpgsqlConnection read, NpgsqlTransaction snapshot, string fetchSql, TableRegistration table, ChangeBatch batch, CancellationToken ct)
    {
        if (_readTimeout is null)
        {
            await FetchAsync(read, snapshot, fetchSql, table, batch, ct).ConfigureAwait(false);
            return;
        }
        await _readTimeout.UseAsync(StatementKind.SnapshotChunk, ct).ConfigureAwait(false);
        try
        {
            await FetchAsync(read, snapshot, fetchSql, table, batch, ct).ConfigureAwait(false);
        }
        catch (PostgresException e) when (_readTimeout.AsTimeout(e, $"Reading a chunk of up to {chunkRows} rows of {table} for the initial snapshot") is { } timeout)
        {
            throw timeout;
        }
    }

    /// <summary>Writes one chunk's edges (binary COPY) and rule failures into the load's transaction.</summary>
    /// <remarks>Ends the chunk's span <paramref name="chunk"/>.</remarks>
    private async Task WriteAsync(NpgsqlConnection target, List<(RecordKey Record, string BucketId)> edges, List<RuleFailure> failures, Activity? chunk, CancellationToken ct)
    {
        using var _ = chunk;
        var started = Stopwatch.GetTimestamp();
        if (chunk is { IsAllDataRequested: true })
        {
            chunk.SetTag(PipelineTracing.EdgesTag, edges.Count);
            chunk.SetTag(PipelineTracing.RuleFailuresTag, failures.Count);
        }
        try
        {
            await ChangelogStore.ApplyEdgesAsync(target, edges, [], ct).ConfigureAwait(false);
            await ChangelogStore.WriteRuleFailuresAsync(target, failures, ct).ConfigureAwait(false);
        }
        catch (PostgresException e) when (AsTimeout(e, StatementKind.SnapshotChunk, started, $"Writing the bucket edges of a chunk ({edges.Count} edges) for the initial snapshot") is { } timeout)
        {
            chunk.Failed(timeout);
            throw timeout;
        }
        catch (Exception e)
        {
            chunk.Failed(e);
            throw;
        }
        _totalEdges += edges.Count;
        _totalFailures += failures.Count;
        if (failures.Count > 0)
            LogRuleFailures(logger, failures.Count, failures[0].TableName, failures[0].RecordId, failures[0].ErrorText);
    }

    /// <summary>The cursor over the table's live rows: the referenced columns as text, in <see cref="TableRegistration.ReferencedColumns"/> order.</summary>
    private static string DeclareSql(TableRegistration table)
    {
        // Identifiers are quoted; nothing else comes from configuration.
        var columns = string.Join(", ", table.ReferencedColumns.Select(c => PgIdentifier.Quote(c) + "::text"));
        // A one-column id is never NULL in a record id; a composite id holds NULL as a value (its unique key decides).
        var conditions = new List<string>();
        if (!table.HasCompositeId)
            conditions.Add($"{PgIdentifier.Quote(table.IdColumns[0])} IS NOT NULL");
        if (table.SoftDeleteColumn is { } softDelete)
            conditions.Add($"{PgIdentifier.Quote(softDelete)} IS NULL");
        var where = conditions.Count > 0 ? " WHERE " + string.Join(" AND ", conditions) : "";
        return $"DECLARE {CursorName} NO SCROLL CURSOR FOR SELECT {columns} FROM {PgIdentifier.QuoteQualified(table.Schema, table.Name)}{where}";
    }

    private static async Task<long> EstimateAsync(NpgsqlConnection read, NpgsqlTransaction snapshot, TableRegistration table, CancellationToken ct)
    {
        await using var command = new NpgsqlCommand("SELECT GREATEST(c.reltuples, 0)::bigint FROM pg_catalog.pg_class c WHERE c.oid = pg_catalog.to_regclass($1)", read, snapshot)
        {
            Parameters = { new NpgsqlParameter<string> { TypedValue = PgIdentifier.QuoteQualified(table.Schema, table.Name) } },
        };
        return await command.ExecuteScalarAsync(ct).ConfigureAwait(false) is long estimate ? estimate : 0;
    }

    /// <summary>Reads the next chunk of rows into <paramref name="batch"/> as inserts.</summary>
    private async Task FetchAsync(NpgsqlConnection read, NpgsqlTransaction snapshot, string fetchSql, TableRegistration table, ChangeBatch batch, CancellationToken ct)
    {
        var columns = table.ReferencedColumns.Count;
        await using var command = new NpgsqlCommand(fetchSql, read, snapshot);
        await using var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
        while (await reader.ReadAsync(ct).ConfigureAwait(false))
        {
            var first = batch.ValueMark.Values;
            for (var i = 0; i < columns; i++)
            {
                if (reader.IsDBNull(i))
                {
                    batch.AddEmpty(TupleValueKind.Null);
                    continue;
                }
                var text = reader.GetString(i);
                var needed = s_utf8.GetMaxByteCount(text.Length);
                if (_text.Length < needed)
                    _text = new byte[Math.Max(needed, _text.Length * 2)];
                batch.AddText(_text.AsSpan(0, s_utf8.GetBytes(text, _text)));
            }
            batch.Add(new DecodedChange(table, ChangeOperation.Insert, first));
        }
    }

    /// <summary>Runs the assigner over the chunk and collects its edges (distinct, non-empty, as the edge diff keeps them) and rule failures.</summary>
    private async Task AssignAsync(NpgsqlConnection read, ChangeBatch batch, List<(RecordKey Record, string BucketId)> edges, List<RuleFailure> failures, CancellationToken ct)
    {
        var assignments = _assignments.For(batch);
        // Invariant 7: ids the changelog cannot hold fail their row as a rule failure, as in the writer, and the load goes on.
        foreach (var assignment in assignments)
            limits.CheckRecordId(assignment);
        await assigner.AssignAsync(new BucketAssignmentBatch(assignments, registry, read, _bucketIds) { SourceTimeout = _readTimeout }, ct).ConfigureAwait(false);
        foreach (var assignment in assignments)
            limits.CheckBuckets(assignment);

        edges.Clear();
        failures.Clear();
        for (var i = 0; i < batch.Count; i++)
        {
            var assignment = assignments[i];
            var record = new RecordKey(assignment.Table.ChangelogName, assignment.RecordId);
            if (assignment.Failure is { } failure)
            {
                failures.Add(new RuleFailure(record.TableName, record.RecordId, ChangeOperation.Insert, failure, RowJson.Payload(batch, batch[i])));
                continue;
            }
            // A record with no edges yet that keeps its buckets keeps none.
            var buckets = assignment.Buckets;
            for (var b = 0; b < buckets.Count; b++)
            {
                var bucket = buckets[b];
                if (!string.IsNullOrEmpty(bucket) && !Repeats(buckets, b))
                    edges.Add((record, bucket));
            }
        }
    }

    /// <summary><paramref name="error"/> as the timeout of <paramref name="kind"/> when it is one (the statement began at <paramref name="started"/> or later); null otherwise.</summary>
    private StatementTimeoutException? AsTimeout(PostgresException error, StatementKind kind, long started, string what) =>
        Timeouts is { } timeouts && PostgresErrors.IsStatementTimeout(error, timeouts.For(kind), Stopwatch.GetElapsedTime(started))
            ? new StatementTimeoutException(kind, timeouts.For(kind), what, error)
            : null;

    private static bool Repeats(IList<string> buckets, int index)
    {
        for (var i = 0; i < index; i++)
        {
            if (string.Equals(buckets[i], buckets[index], StringComparison.Ordinal))
                return true;
        }
        return false;
    }

    private static double Rate(long rows, long started)
    {
        var seconds = Stopwatch.GetElapsedTime(started).TotalSeconds;
        return seconds > 0 ? rows / seconds : 0;
    }

    [LoggerMessage(EventId = EventIds.SnapshotProgress, Level = LogLevel.Information, Message = "Initial snapshot: {Table}: {Rows} of about {Estimate} rows loaded ({Rate:F0} rows/s)")]
    private static partial void LogProgress(ILogger logger, string table, long rows, long estimate, double rate);

    [LoggerMessage(EventId = EventIds.SnapshotTableLoaded, Level = LogLevel.Information, Message = "Initial snapshot: {Table} done: {Rows} rows (estimated {Estimate}) at {Rate:F0} rows/s")]
    private static partial void LogTableLoaded(ILogger logger, string table, long rows, long estimate, double rate);

    [LoggerMessage(EventId = EventIds.SnapshotCommitted, Level = LogLevel.Information,
        Message = "Initial snapshot committed: {Rows} rows of {Tables} table(s) gave {Edges} bucket edges and {Failures} rule failure(s) in {Seconds:F1} s; streaming starts after {Position}")]
    private static partial void LogLoaded(ILogger logger, long rows, long edges, long failures, int tables, double seconds, Lsn position);

    [LoggerMessage(EventId = EventIds.SnapshotRuleFailures, Level = LogLevel.Warning,
        Message = "Initial snapshot: {Count} row(s) of this chunk failed their bucket rule and were recorded in sync_rule_failures (operation insert) without edges; first: {Table} {RecordId}: {Error}")]
    private static partial void LogRuleFailures(ILogger logger, int count, string table, string recordId, string error);
}
