using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Npgsql;
using Synchro.Pipeline.Buckets;
using Synchro.Pipeline.Protocol;
using Synchro.Pipeline.Registry;
using Synchro.Pipeline.Changelog;
using Synchro.Pipeline.Decoding;
using Synchro.Pipeline.Diagnostics;
using Synchro.Pipeline.Postgres;

namespace Synchro.Pipeline.Maintenance;

/// <summary>
/// Re-evaluates the changes recorded in <c>sync_rule_failures</c> (after a bucket rule was fixed) and writes their
/// changelog rows and edges as the pipeline's writer would have, in chunks of <see cref="ChunkSize"/> failures.
/// </summary>
/// <remarks>
/// <para>
/// The rules are the pipeline's (<see cref="WalPipelineOptions.Tables"/>, its SQL functions, <see cref="WalPipelineOptions.BucketAssigner"/>,
/// <see cref="WalPipelineOptions.MaxBucketsPerChange"/>), and so are the id limits (<see cref="WalPipelineOptions.MaxRecordIdBytes"/>,
/// <see cref="WalPipelineOptions.MaxBucketIdBytes"/>): a change whose ids are still too long keeps failing with its reason. Each chunk is one transaction on the changelog database: the
/// changelog rows, the edge diff against the record's current edges, and the removal of every replayed failure commit
/// together; a failure that fails again stays, with the new error text.
/// </para>
/// <para>
/// A failure is re-evaluated against the record's current row in the source database, not the row it recorded: a later
/// change of the record may already have been written, and replaying the older row would move the record back to
/// stale buckets. So a failed insert or update of a row that still exists is replayed with its current values (as a
/// delete when it is soft-deleted now); one whose row no longer exists is superseded (its delete removes, or removed, the
/// record) and is dropped without rows. A failed delete is replayed with its recorded row, unless the record exists again
/// (superseded). Several failures of one record in a chunk replay once.
/// </para>
/// <para>
/// Safe while the pipeline runs: each chunk holds an exclusive lock on <c>sync_bucket_edges</c>, which the writer's next
/// batch waits for (and which waits for the batch in progress), so replayed rows never interleave with the writer's and
/// <c>seq</c> keeps following commit order. Readers of the edges wait for a chunk too. A bucket function must therefore not
/// read <c>sync_bucket_edges</c> of the same database during a replay: it would wait for the chunk's own lock until
/// <see cref="LockTimeout"/>, and the replay stops saying so.
/// </para>
/// <para>
/// Timeouts and retries are the pipeline's: every statement of a chunk on the changelog database, and the reads of the
/// records' current rows, run under <see cref="WalPipelineOptions.ReplayChunkTimeout"/> (the lock on the edges included), the
/// rules under theirs. A chunk that times out, deadlocks, fails to serialize, finds a lock unavailable or is cancelled by
/// another session is rolled back and tried again, at most <see cref="WalPipelineOptions.MaxStatementRetries"/> times in a
/// row; then the replay stops with the error, and the chunks committed before stay replayed.
/// </para>
/// </remarks>
public sealed class RuleFailureReplayer
{
    /// <summary>How long a rule's query waits for a lock during a replay before it fails.</summary>
    public static readonly TimeSpan LockTimeout = TimeSpan.FromSeconds(30);

    // Still-failing changes listed in the result; the rest are counted.
    private const int MaxListed = 100;

    private readonly WalPipelineOptions _options;

    /// <summary>A replayer using <paramref name="options"/>' connections and rules (its slot and publication are not used).</summary>
    /// <exception cref="ArgumentException">A connection string or the table registry is invalid.</exception>
    public RuleFailureReplayer(WalPipelineOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var problems = options.FindProblems().Where(p => !p.StartsWith(nameof(WalPipelineOptions.SlotName), StringComparison.Ordinal)
            && !p.StartsWith(nameof(WalPipelineOptions.PublicationName), StringComparison.Ordinal)).ToList();
        if (problems.Count > 0)
            throw new ArgumentException("Invalid WalPipelineOptions:" + string.Concat(problems.Select(p => Environment.NewLine + " - " + p)));
        _options = options;
    }

    /// <summary>Failures read, evaluated and resolved per transaction. Default 500.</summary>
    public int ChunkSize { get; init; } = 500;

    /// <summary>Replays every failure recorded when the call starts, chunk by chunk.</summary>
    /// <exception cref="WalPipelineConfigurationException">A configured bucket function does not exist.</exception>
    public async Task<RuleFailureReplayResult> ReplayAsync(CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(ChunkSize, 1);
        using var activity = PipelineTracing.StartChild(PipelineTracing.Replay);
        try
        {
            var result = await ReplayCoreAsync(cancellationToken).ConfigureAwait(false);
            if (activity is { IsAllDataRequested: true })
            {
                activity.SetTag(PipelineTracing.ReplayedTag, result.Replayed);
                activity.SetTag(PipelineTracing.StillFailingTag, result.StillFailing);
                activity.SetTag(PipelineTracing.RowsTag, result.ChangelogRows);
            }
            return result;
        }
        catch (Exception e)
        {
            activity.Failed(e);
            throw;
        }
    }

    private async Task<RuleFailureReplayResult> ReplayCoreAsync(CancellationToken cancellationToken)
    {
        var result = new RuleFailureReplayResult();
        var timeouts = _options.StatementTimeouts;
        var connections = _options.Connections;
        var source = connections.DataSource(timeouts.WithClientBackstop(_options.SourceSessionString), PipelineConnectionKind.Source);
        await using (source.ConfigureAwait(false))
        {
            var changelog = connections.DataSource(timeouts.WithClientBackstop(_options.ChangelogSessionString), PipelineConnectionKind.Changelog);
            await using (changelog.ConfigureAwait(false))
            {
                var sourceConnection = await source.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
                await using (sourceConnection.ConfigureAwait(false))
                {
                    var problems = await SqlFunctionBucketAssigner.CheckAsync(sourceConnection, _options.Tables, cancellationToken).ConfigureAwait(false);
                    if (problems.Count > 0)
                        throw new WalPipelineConfigurationException(problems);
                    await using (var timeout = new NpgsqlCommand($"SET lock_timeout = {(int)LockTimeout.TotalMilliseconds}", sourceConnection))
                        await timeout.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
                    var connection = await changelog.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
                    await using (connection.ConfigureAwait(false))
                    {
                        var run = new Run(_options, connection, sourceConnection, result);
                        while (await ChunkWithRetriesAsync(run, cancellationToken).ConfigureAwait(false))
                        {
                        }
                    }
                }
            }
        }
        return result;
    }

    /// <summary>Replays the next chunk, trying it again after a conflict (see the class remarks); false when there was none.</summary>
    /// <exception cref="WalPipelineException">The chunk failed on conflicts more than <see cref="WalPipelineOptions.MaxStatementRetries"/> times in a row.</exception>
    private async Task<bool> ChunkWithRetriesAsync(Run run, CancellationToken cancellationToken)
    {
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                return await run.ChunkAsync(ChunkSize, cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is StatementTimeoutException || PostgresErrors.IsTransientConflict(e))
            {
                if (attempt >= _options.MaxStatementRetries)
                {
                    var selfLock = e is PostgresException { SqlState: PostgresErrorCodes.LockNotAvailable }
                        ? " If a bucket function reads sync_bucket_edges of this database, it waits for the replay's own lock on it: such a rule cannot be replayed."
                        : "";
                    throw new WalPipelineException(
                        $"replay-failures stopped: {PostgresErrors.DescribeConflict(e)} It happened {attempt + 1} times in a row (MaxStatementRetries is "
                        + $"{_options.MaxStatementRetries}).{selfLock} The chunks committed before it stay replayed; run it again once the cause is fixed.", e);
                }
                // The chunk rolled back; a short pause lets the other session finish.
                await Task.Delay(TimeSpan.FromMilliseconds(200 << Math.Min(attempt, 5)), cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>One replay: the state kept from chunk to chunk.</summary>
    private sealed class Run(WalPipelineOptions options, NpgsqlConnection connection, NpgsqlConnection sourceConnection, RuleFailureReplayResult result)
    {
        private readonly StatementTimeouts _timeouts = options.StatementTimeouts;
        private readonly SessionTimeout _sourceTimeout = new(sourceConnection, options.StatementTimeouts);
        private readonly TableRegistry _registry = options.Tables;
        private readonly GuardedBucketAssigner _assigner = new(options.Tables, options.BucketAssigner, options.MaxBucketsPerChange);
        private readonly ChangelogLimits _limits = new(options.MaxRecordIdBytes, options.MaxBucketIdBytes);
        private readonly SourceRows _rows = new();
        private readonly Dictionary<TableRegistration, RowLayout> _layouts = [];
        private readonly BucketIdCache _bucketIds = new();
        private readonly ChangeBatchPool _pool = new();
        private long _lastId;
        // Failures the chunk being replayed read, for its span.
        private int _chunkRead;

        /// <summary>Replays the next chunk; false when there was none. A chunk that fails leaves nothing, counts included, and can be tried again.</summary>
        public async Task<bool> ChunkAsync(int size, CancellationToken ct)
        {
            var (lastId, replayed, superseded) = (_lastId, result.Replayed, result.Superseded);
            var (stillFailing, rows) = (result.StillFailing, result.ChangelogRows);
            var started = Stopwatch.GetTimestamp();
            using var activity = PipelineTracing.StartChild(PipelineTracing.ReplayChunk);
            try
            {
                _chunkRead = 0;
                var more = await TryChunkAsync(size, ct).ConfigureAwait(false);
                if (activity is { IsAllDataRequested: true })
                {
                    activity.SetTag(PipelineTracing.FailuresTag, _chunkRead);
                    activity.SetTag(PipelineTracing.ReplayedTag, result.Replayed - replayed);
                    activity.SetTag(PipelineTracing.StillFailingTag, result.StillFailing - stillFailing);
                    activity.SetTag(PipelineTracing.RowsTag, result.ChangelogRows - rows);
                }
                return more;
            }
            catch (Exception e)
            {
                activity.Failed(e);
                (_lastId, result.Replayed, result.Superseded) = (lastId, replayed, superseded);
                var timeout = _timeouts.ReplayChunk;
                if (e is PostgresException pg && PostgresErrors.IsStatementTimeout(pg, timeout, Stopwatch.GetElapsedTime(started)))
                    throw new StatementTimeoutException(StatementKind.ReplayChunk, timeout, $"A statement replaying a chunk of up to {size} rule failures", e);
                throw;
            }
        }

        private async Task<bool> TryChunkAsync(int size, CancellationToken ct)
        {
            var transaction = await connection.BeginTransactionAsync(ct).ConfigureAwait(false);
            await using (transaction.ConfigureAwait(false))
            {
                await SessionTimeout.SetLocalAsync(connection, _timeouts, StatementKind.ReplayChunk, ct).ConfigureAwait(false);
                await ChangelogStore.LockEdgesAsync(connection, ct).ConfigureAwait(false);
                var failures = await ChangelogStore.LoadRuleFailuresAsync(connection, _lastId, size, ct).ConfigureAwait(false);
                _chunkRead = failures.Count;
                if (failures.Count == 0)
                    return false;
                _lastId = failures[^1].Id;
                var resolved = new List<long>();
                var failing = new List<(long Id, string ErrorText)>();
                var rows = await ReplayAsync(failures, resolved, failing, ct).ConfigureAwait(false);
                await ChangelogStore.ResolveRuleFailuresAsync(connection, resolved, failing, ct).ConfigureAwait(false);
                await transaction.CommitAsync(ct).ConfigureAwait(false);
                result.ChangelogRows += rows;
                foreach (var (id, error) in failing)
                {
                    var failure = failures.First(f => f.Id == id);
                    result.StillFailing++;
                    if (result.Failing.Count < MaxListed)
                        result.Failing.Add(new RuleFailureReplayResult.Failure(id, failure.TableName, failure.RecordId, error));
                }
                return true;
            }
        }

        private async Task<int> ReplayAsync(List<StoredRuleFailure> failures, List<long> resolved, List<(long, string)> failing, CancellationToken ct)
        {
            // The latest failure of a record stands for the earlier ones: all are replayed from the record's current state.
            var latest = new Dictionary<RecordKey, StoredRuleFailure>();
            foreach (var failure in failures)
                latest[new RecordKey(failure.TableName, failure.RecordId)] = failure;
            var replayed = new List<(StoredRuleFailure Failure, TableRegistration Table, ChangeOperation Operation, string?[]? Current)>();
            foreach (var group in latest.Values.GroupBy(f => f.TableName))
            {
                var table = _registry.FirstOrDefault(t => t.ChangelogName == group.Key);
                if (table is null)
                {
                    failing.AddRange(group.Select(f => (f.Id, $"table {group.Key} is not registered; register it, or delete its failures")));
                    continue;
                }
                await _sourceTimeout.UseAsync(StatementKind.ReplayChunk, ct).ConfigureAwait(false);
                var layout = await LayoutAsync(table, ct).ConfigureAwait(false);
                var current = await _rows.LookupAsync(sourceConnection, table, layout.Names, group.Select(f => f.RecordId).ToHashSet(StringComparer.Ordinal), ct).ConfigureAwait(false);
                var softDelete = table.SoftDeleteColumn is { } column ? Array.IndexOf(layout.Names, column) : -1;
                foreach (var failure in group)
                {
                    // Recorded under other id columns (the registration changed since): it names no record of the table now.
                    if (!table.TryParseRecordId(failure.RecordId, out _))
                    {
                        failing.Add((failure.Id, $"the record id is not one of {table}'s id columns ({table.IdColumnsText}); it was recorded under another registration: delete the failure"));
                        continue;
                    }
                    var exists = current.TryGetValue(failure.RecordId, out var row);
                    var softDeleted = exists && softDelete >= 0 && row![softDelete] is not null;
                    if (failure.Operation == ChangeOperation.Delete ? exists && !softDeleted : !exists)
                    {
                        result.Superseded++;
                        resolved.Add(failure.Id);
                    }
                    else
                    {
                        replayed.Add((failure, table, softDeleted ? ChangeOperation.Delete : failure.Operation, exists ? row : null));
                    }
                }
            }
            foreach (var failure in failures)
            {
                if (latest[new RecordKey(failure.TableName, failure.RecordId)] != failure)
                {
                    result.Superseded++;
                    resolved.Add(failure.Id);
                }
            }
            if (replayed.Count == 0)
                return 0;

            var batch = _pool.Rent();
            try
            {
                var keys = new List<RecordKey>();
                var included = new List<StoredRuleFailure>();
                foreach (var (failure, table, operation, current) in replayed)
                {
                    var layout = _layouts[table];
                    var first = batch.ValueMark.Values;
                    var values = current is not null ? TextOf(current) : FromPayload(failure.PayloadJson, layout.Names);
                    if (!HasId(table, layout, values))
                    {
                        failing.Add((failure.Id, $"the recorded row has no value for the id column{(table.HasCompositeId ? "s" : "")} {table.IdColumnsText}; delete the failure"));
                        continue;
                    }
                    foreach (var column in table.ReferencedColumns)
                        Add(batch, values[Array.IndexOf(layout.Names, column)]);
                    foreach (var value in values)
                        Add(batch, value);
                    batch.Add(new DecodedChange(table, operation, first, layout));
                    keys.Add(new RecordKey(failure.TableName, failure.RecordId));
                    included.Add(failure);
                }
                if (included.Count == 0)
                    return 0;

                var assignments = new BucketAssignment[batch.Count];
                for (var i = 0; i < assignments.Length; i++)
                {
                    assignments[i] = new BucketAssignment(batch, i, keys[i].RecordId);
                    // Invariant 7: an id the changelog cannot hold keeps its failure (with the length and the limit) instead of failing the chunk.
                    _limits.CheckRecordId(assignments[i]);
                }
                await _assigner.AssignAsync(new BucketAssignmentBatch(assignments, _registry, sourceConnection, _bucketIds) { SourceTimeout = _sourceTimeout }, ct).ConfigureAwait(false);
                foreach (var assignment in assignments)
                    _limits.CheckBuckets(assignment);

                var overlay = new EdgeOverlay(await ChangelogStore.LoadEdgesAsync(connection, keys, ct).ConfigureAwait(false));
                var rows = new List<ChangelogRow>();
                for (var i = 0; i < assignments.Length; i++)
                {
                    if (overlay.ApplyDecision(keys[i], batch[i].Operation, assignments[i], rows) is { } error)
                    {
                        failing.Add((included[i].Id, error));
                        continue;
                    }
                    resolved.Add(included[i].Id);
                    result.Replayed++;
                }
                var (added, removed) = overlay.NetChanges();
                await ChangelogStore.WriteChangelogAsync(connection, rows, ct).ConfigureAwait(false);
                await ChangelogStore.ApplyEdgesAsync(connection, added, removed, ct).ConfigureAwait(false);
                return rows.Count;
            }
            finally
            {
                batch.Release();
            }
        }

        private async Task<RowLayout> LayoutAsync(TableRegistration table, CancellationToken ct)
        {
            if (_layouts.TryGetValue(table, out var layout))
                return layout;
            var (names, types) = await SourceRows.ColumnsAsync(sourceConnection, table, ct).ConfigureAwait(false);
            var positions = table.ReferencedColumns.Select(c => Array.IndexOf(names, c)).ToArray();
            if (Array.IndexOf(positions, -1) is var missing and >= 0)
                throw new WalPipelineConfigurationException($"Registered column '{table.ReferencedColumns[missing]}' of table {table} does not exist in the source database; fix the registration.");
            layout = new RowLayout(table, names, types, positions, fullRow: true);
            _layouts.Add(table, layout);
            return layout;
        }

        /// <summary>A value to add: its text, <see cref="s_null"/> for NULL, null when the row did not carry it (an unchanged TOAST value).</summary>
        private static object?[] TextOf(string?[] current) => current.Select(v => (object?)(v is null ? s_null : Encoding.UTF8.GetBytes(v))).ToArray();

        /// <summary>The recorded row's values by column: a JSON value back to PostgreSQL's text form (<c>true</c> is <c>t</c>).</summary>
        private static object?[] FromPayload(string? payload, string[] names)
        {
            var values = new object?[names.Length];
            if (payload is null)
                return values;
            using var document = JsonDocument.Parse(payload);
            if (document.RootElement.ValueKind != JsonValueKind.Object)
                return values;
            for (var i = 0; i < names.Length; i++)
            {
                if (!document.RootElement.TryGetProperty(names[i], out var value))
                    continue;
                values[i] = value.ValueKind switch
                {
                    JsonValueKind.Null => s_null,
                    JsonValueKind.String => Encoding.UTF8.GetBytes(value.GetString()!),
                    JsonValueKind.True => "t"u8.ToArray(),
                    JsonValueKind.False => "f"u8.ToArray(),
                    _ => Encoding.UTF8.GetBytes(value.GetRawText()),
                };
            }
            return values;
        }

        private static readonly object s_null = new();

        /// <summary>Whether <paramref name="values"/> carry the record's id: a one-column id as text, a composite one with every column (NULL included).</summary>
        private static bool HasId(TableRegistration table, RowLayout layout, object?[] values)
        {
            foreach (var column in table.IdColumns)
            {
                var value = values[Array.IndexOf(layout.Names, column)];
                if (value is null || (!table.HasCompositeId && value == s_null))
                    return false;
            }
            return true;
        }

        private static void Add(ChangeBatch batch, object? value)
        {
            if (value is byte[] text)
                batch.AddText(text);
            else
                batch.AddEmpty(value is null ? TupleValueKind.UnchangedToast : TupleValueKind.Null);
        }
    }
}

/// <summary>What <see cref="RuleFailureReplayer.ReplayAsync"/> did.</summary>
public sealed class RuleFailureReplayResult
{
    /// <summary>Failures whose changes were evaluated and written (their failure rows deleted).</summary>
    public int Replayed { get; internal set; }

    /// <summary>Failures dropped because a later change of the record (or its deletion) already decided its buckets.</summary>
    public int Superseded { get; internal set; }

    /// <summary>Failures whose rule failed again; they stay in <c>sync_rule_failures</c> with the new error text.</summary>
    public int StillFailing { get; internal set; }

    /// <summary>Changelog rows written.</summary>
    public long ChangelogRows { get; internal set; }

    /// <summary>The first 100 failures that failed again.</summary>
    public IList<Failure> Failing { get; } = [];

    internal RuleFailureReplayResult()
    {
    }

    /// <summary>A failure that failed again.</summary>
    public sealed class Failure
    {
        internal Failure(long id, string tableName, string recordId, string errorText)
        {
            Id = id;
            TableName = tableName;
            RecordId = recordId;
            ErrorText = errorText;
        }

        /// <summary>Its <c>sync_rule_failures.id</c>.</summary>
        public long Id { get; }

        /// <summary>The record's table as the changelog names it.</summary>
        public string TableName { get; }

        /// <summary>The record's id.</summary>
        public string RecordId { get; }

        /// <summary>Why it failed this time.</summary>
        public string ErrorText { get; }
    }
}
