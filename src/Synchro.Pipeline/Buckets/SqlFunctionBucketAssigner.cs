using System.Buffers;
using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Npgsql;
using Synchro.Pipeline.Protocol;
using Synchro.Pipeline.Registry;
using Synchro.Pipeline.Decoding;
using Synchro.Pipeline.Postgres;

namespace Synchro.Pipeline.Buckets;

/// <summary>
/// Buckets from SQL functions (<see cref="TableRegistration.BucketFunction"/>, <see cref="TableRegistry.GlobalBucketFunction"/>)
/// with the signature <c>(table_name text, operation text, new_row jsonb, old_row jsonb) RETURNS SETOF text</c>: one query per
/// function per batch, every change of the batch that uses the function in it.
/// </summary>
/// <remarks>
/// <para>
/// Arguments: <c>table_name</c> as the changelog writes it (<c>orders</c>, or <c>schema.table</c> outside <c>public</c>);
/// <c>operation</c> <c>create</c>, <c>update</c> or <c>delete</c> (the synchro reference's names; a soft delete is a
/// <c>delete</c>); <c>new_row</c> the row after the change, or the deleted row for a delete (as the reference passes it);
/// <c>old_row</c> the row before the change when the server sent one (an UPDATE or DELETE of a table with
/// <c>REPLICA IDENTITY FULL</c>, or the key columns), else NULL. Rows are typed JSON (<see cref="RowJson"/>).
/// </para>
/// <para>
/// An unchanged TOAST value (which the server does not resend) is taken from the old row when it has it, else read from
/// the source table's current row (one query per table per batch: the column did not change, and clients read the
/// current row anyway); when that row is gone, the record keeps its existing buckets (a later change deletes it).
/// So a missing value never produces a wrong bucket.
/// </para>
/// <para>
/// The query streams: every change's buckets are followed by a marker row, so the client knows which changes are answered
/// when the query fails. A function error fails only the change being evaluated (the first one not answered), which becomes
/// a rule failure with the server's message, and the query goes on after it; an unknown function or a type error before
/// any change was answered fails the query's changes at once. A row with a <c>json</c> value <c>jsonb</c> cannot hold (a
/// <c>\u0000</c> escape, an unpaired surrogate) is never sent: it would fail the whole document, so its change fails at once
/// (invariant 7).
/// </para>
/// <para>
/// Timeouts (<see cref="WalPipelineOptions.RuleQueryTimeout"/>, the session's <c>statement_timeout</c>): a query that times
/// out after answering some changes goes on after them, so the limit is in practice per change. A change that alone runs
/// past it is a rule failure — one slow row must not stop the pipeline (invariant 7) — but when the next query of the same
/// function also times out on its first change alone, with nothing answered in between (in this batch or the next), the
/// function is slow or blocked for everything: that is an operational error (<see cref="StatementTimeoutException"/>),
/// which the pipeline retries a bounded number of times and then stops on, rather than turning every change into a failure.
/// A deadlock, a lock not available or another session's cancel is not the rows' fault either: it ends the batch, which is retried.
/// </para>
/// <para>
/// Fan-out is limited while the rows stream in: once a change has more distinct buckets than <c>maxBucketsPerChange</c>
/// its buckets are dropped and the rest of its rows only counted, so memory stays bounded by the limit whatever the
/// function returns, and the change fails with the fan-out reason.
/// </para>
/// </remarks>
internal sealed class SqlFunctionBucketAssigner : IBucketAssigner
{
    private const string ResolveSql = """
        SELECT n.nspname::text, p.proname::text, p.proretset AND p.prorettype = 'pg_catalog.text'::regtype
        FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
        WHERE p.oid = pg_catalog.to_regprocedure($1)
        """;

    private static readonly JsonWriterOptions s_writerOptions = new() { SkipValidation = true };

    private readonly TableRegistry _registry;
    private readonly int _maxBucketsPerChange;
    private readonly SourceRows _rows = new();
    // The distinct buckets of the change whose rows are streaming in, once it has returned more than the limit.
    private readonly HashSet<string> _distinct = new(StringComparer.Ordinal);
    // Configured name -> quoted "schema"."name" as the catalog resolved it.
    private readonly Dictionary<string, string> _resolved = new(StringComparer.Ordinal);
    private readonly ArrayBufferWriter<byte> _buffer = new(64 * 1024);
    private Utf8JsonWriter? _writer;
    // Functions whose last query timed out on its first change alone, nothing answered since (kept across batches and runs).
    private readonly HashSet<string> _timedOutAlone = new(StringComparer.Ordinal);
    // Changes of the running query whose answer is complete (their marker arrived).
    private int _answered;

    /// <param name="registry">The registered tables.</param>
    /// <param name="maxBucketsPerChange">The fan-out limit applied while rows stream in; 0 for none.</param>
    public SqlFunctionBucketAssigner(TableRegistry registry, int maxBucketsPerChange = 0)
    {
        _registry = registry;
        _maxBucketsPerChange = maxBucketsPerChange;
    }

    /// <summary>Whether any table's buckets come from a function.</summary>
    public static bool IsNeeded(TableRegistry registry) => registry.GlobalBucketFunction is not null || registry.Any(t => t.BucketFunction is not null);

    /// <inheritdoc/>
    public async Task AssignAsync(BucketAssignmentBatch batch, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(batch);
        var groups = new Dictionary<string, List<Pending>>(StringComparer.Ordinal);
        for (var i = 0; i < batch.Changes.Count; i++)
        {
            var change = batch.Changes[i];
            if (change.IsDecided || _registry.BucketFunctionOf(change.Table) is not { } function)
                continue;
            if (!groups.TryGetValue(function, out var group))
                groups.Add(function, group = []);
            group.Add(new Pending(change));
        }
        foreach (var (function, group) in groups)
        {
            var session = batch.SourceTimeout;
            string name;
            try
            {
                if (session is not null)
                    await session.UseAsync(StatementKind.RuleQuery, cancellationToken).ConfigureAwait(false);
                name = await ResolveAsync(batch.SourceConnection, function, cancellationToken).ConfigureAwait(false);
                await FillUnchangedAsync(batch.SourceConnection, group, cancellationToken).ConfigureAwait(false);
            }
            catch (PostgresException e) when (session?.AsTimeout(e, $"Reading the unchanged values bucket function {function} needs") is { } timeout)
            {
                throw timeout;
            }
            foreach (var pending in group)
            {
                if (!pending.Change.IsDecided && UnstorableJsonColumn(pending) is { } column)
                {
                    pending.Change.Fail($"the json value of column {column} has a \\u0000 (NUL) or unpaired surrogate escape, which jsonb cannot hold, "
                        + "so the bucket function cannot be given the row; the failure's payload keeps the value as text");
                }
            }
            group.RemoveAll(p => p.Change.IsDecided);
            await EvaluateAsync(batch.SourceConnection, session, function, name, group, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// The problems of the configured functions in the source database: each must exist with the bucket function's argument
    /// types and return <c>SETOF text</c>.
    /// </summary>
    public static async Task<List<string>> CheckAsync(NpgsqlConnection connection, TableRegistry registry, CancellationToken ct)
    {
        var problems = new List<string>();
        var users = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        if (registry.GlobalBucketFunction is { } global)
            users[global] = ["GlobalBucketFunction"];
        foreach (var table in registry)
        {
            if (table.BucketFunction is { } own)
            {
                if (!users.TryGetValue(own, out var list))
                    users.Add(own, list = []);
                list.Add($"table {table}");
            }
        }
        foreach (var (function, usedBy) in users)
        {
            var (quoted, returnsSetOfText) = await LookupAsync(connection, function, ct).ConfigureAwait(false);
            var by = string.Join(", ", usedBy);
            if (quoted is null)
            {
                problems.Add($"Bucket function {BucketFunctionName.Signature(function)} ({by}) does not exist in the source database (or the connecting user cannot see it); "
                    + $"create it (CREATE FUNCTION {function}(table_name text, operation text, new_row jsonb, old_row jsonb) RETURNS SETOF text ...) or fix the name.");
            }
            else if (!returnsSetOfText)
            {
                problems.Add($"Bucket function {quoted}({BucketFunctionName.Arguments}) ({by}) must return SETOF text; recreate it with RETURNS SETOF text.");
            }
        }
        return problems;
    }

    private async Task<string> ResolveAsync(NpgsqlConnection connection, string function, CancellationToken ct)
    {
        if (_resolved.TryGetValue(function, out var known))
            return known;
        var (quoted, returnsSetOfText) = await LookupAsync(connection, function, ct).ConfigureAwait(false);
        if (quoted is null || !returnsSetOfText)
        {
            throw new WalPipelineException($"Bucket function {BucketFunctionName.Signature(function)} no longer exists or no longer returns SETOF text; "
                + "recreate it, then restart the pipeline (and replay the rule failures recorded meanwhile with replay-failures).");
        }
        _resolved[function] = quoted;
        return quoted;
    }

    private static async Task<(string? Quoted, bool ReturnsSetOfText)> LookupAsync(NpgsqlConnection connection, string function, CancellationToken ct)
    {
        if (!BucketFunctionName.IsValid(function))
            return (null, false);
        var command = new NpgsqlCommand(ResolveSql, connection) { Parameters = { new NpgsqlParameter<string> { TypedValue = BucketFunctionName.Signature(function) } } };
        await using (command.ConfigureAwait(false))
        {
            var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                if (!await reader.ReadAsync(ct).ConfigureAwait(false))
                    return (null, false);
                return (PgIdentifier.QuoteQualified(reader.GetString(0), reader.GetString(1)), reader.GetBoolean(2));
            }
        }
    }

    /// <summary>Finds the unchanged TOAST values the old row cannot supply and reads them from the source rows, one query per table.</summary>
    private async Task FillUnchangedAsync(NpgsqlConnection connection, List<Pending> group, CancellationToken ct)
    {
        Dictionary<TableRegistration, (HashSet<string> Columns, List<Pending> Changes)>? lookups = null;
        foreach (var pending in group)
        {
            var change = pending.Change.Change;
            // A delete's row is the old one: what it lacks (columns outside a key-only replica identity) no longer exists.
            if (change.Operation == ChangeOperation.Delete && !change.HasOldRow)
                continue;
            var batch = pending.Change.Values;
            var layout = change.Layout!;
            for (var i = 0; i < layout.Names.Length; i++)
            {
                if (batch.Value(change.RowValue + i).Kind != TupleValueKind.UnchangedToast)
                    continue;
                if (change.OldRowValue >= 0 && batch.Value(change.OldRowValue + i).Kind != TupleValueKind.UnchangedToast)
                    continue;
                lookups ??= [];
                if (!lookups.TryGetValue(change.Table, out var lookup))
                    lookups.Add(change.Table, lookup = (new HashSet<string>(StringComparer.Ordinal), []));
                lookup.Columns.Add(layout.Names[i]);
                if (lookup.Changes.Count == 0 || !ReferenceEquals(lookup.Changes[^1], pending))
                    lookup.Changes.Add(pending);
            }
        }
        if (lookups is null)
            return;
        foreach (var (table, (columnSet, changes)) in lookups)
        {
            var columns = columnSet.ToArray();
            var ids = changes.Select(p => p.Change.RecordId).ToHashSet(StringComparer.Ordinal);
            var current = await _rows.LookupAsync(connection, table, columns, ids, ct).ConfigureAwait(false);
            foreach (var pending in changes)
            {
                if (!current.TryGetValue(pending.Change.RecordId, out var values))
                {
                    // The row is gone: its delete comes later in the stream and removes the record's edges.
                    pending.Change.KeepExistingBuckets = true;
                    continue;
                }
                pending.Filled = new Dictionary<string, string?>(columns.Length, StringComparer.Ordinal);
                for (var i = 0; i < columns.Length; i++)
                    pending.Filled[columns[i]] = values[i];
            }
        }
    }

    private async Task EvaluateAsync(NpgsqlConnection connection, SessionTimeout? session, string function, string quotedName, List<Pending> changes, CancellationToken ct)
    {
        var start = 0;
        while (start < changes.Count)
        {
            var part = start == 0 ? changes : changes.GetRange(start, changes.Count - start);
            var started = Stopwatch.GetTimestamp();
            _answered = 0;
            try
            {
                await QueryAsync(connection, quotedName, part, ct).ConfigureAwait(false);
                _timedOutAlone.Remove(function);
                break;
            }
            catch (PostgresException e) when (!PostgresErrors.IsConnectionLoss(e))
            {
                var answered = _answered;
                if (answered > 0)
                    _timedOutAlone.Remove(function);
                // The change being evaluated when the query failed: what streamed in for it is not its answer.
                var failing = part[answered];
                failing.Reset();
                var timeout = session?.Timeout ?? TimeSpan.MaxValue;
                if (PostgresErrors.IsStatementTimeout(e, timeout, Stopwatch.GetElapsedTime(started)))
                {
                    if (answered > 0)
                    {
                        // Time ran out over many changes: go on from the one that was running.
                        start += answered;
                        continue;
                    }
                    if (!_timedOutAlone.Add(function))
                        throw new StatementTimeoutException(StatementKind.RuleQuery, timeout, $"Bucket function {function}, on two changes in a row, each on its own (so it is slow or blocked for every change, not for one row),", e);
                    failing.Change.Fail($"bucket function {function} took longer than {nameof(WalPipelineOptions.RuleQueryTimeout)} "
                        + $"({StatementTimeoutException.Format(timeout)}) on this change alone and the server cancelled it; "
                        + $"make the function faster for this row or raise {nameof(WalPipelineOptions.RuleQueryTimeout)}, then replay-failures");
                    start++;
                    continue;
                }
                // A deadlock, a lock not available, another session's cancel: not the row's fault; the batch is retried.
                if (PostgresErrors.IsTransientConflict(e))
                    throw;
                // A statement-level error (unknown function, wrong types) before any answer fails every change alike.
                if (answered == 0 && e.SqlState.StartsWith("42", StringComparison.Ordinal))
                {
                    foreach (var pending in part)
                        pending.Change.Fail($"bucket function {function} failed: {e.MessageText}");
                    break;
                }
                failing.Change.Fail($"bucket function {function} failed: {e.MessageText}");
                start += answered + 1;
            }
        }
        foreach (var pending in changes)
        {
            if (pending.Change.Failure is not null)
                continue;
            if (pending.OverLimit)
            {
                pending.Change.Buckets.Clear();
                pending.Change.Fail(GuardedBucketAssigner.FanOutReason(pending.Returned, _maxBucketsPerChange));
            }
            else if (pending.Change.Buckets.Count == 0)
            {
                pending.Change.AssignNone();
            }
        }
    }

    /// <summary>
    /// Runs the function over <paramref name="changes"/>; their buckets stream into their assignments (see the class remarks
    /// for the limit), and <see cref="_answered"/> counts the changes whose answer is complete.
    /// </summary>
    private async Task QueryAsync(NpgsqlConnection connection, string quotedName, List<Pending> changes, CancellationToken ct)
    {
        // One jsonb document carries the whole batch; rows name their change by position, so no key text comes back. After a
        // change's buckets comes its marker (done). Order: a nested loop over the document's rows in array order, each
        // running the function to its end; WITH ORDINALITY keeps a SQL function from being inlined and OFFSET 0 keeps the
        // subquery from being pulled up, so no plan can interleave changes. The reader checks the order anyway.
        var sql = $"""
            SELECT r.o, b.bucket, b.done
            FROM pg_catalog.jsonb_to_recordset($1::jsonb) AS r(o int, t text, op text, n jsonb, d jsonb)
            CROSS JOIN LATERAL (
                SELECT f.bucket, false AS done FROM {quotedName}(r.t, r.op, r.n, r.d) WITH ORDINALITY AS f(bucket, k)
                UNION ALL
                SELECT NULL, true
                OFFSET 0) AS b
            """;
        var command = new NpgsqlCommand(sql, connection) { Parameters = { new NpgsqlParameter<string> { TypedValue = Document(changes) } } };
        await using (command.ConfigureAwait(false))
        {
            var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                // Invariant: a row belongs to the first change not yet answered, and its marker answers it.
                _distinct.Clear();
                while (await reader.ReadAsync(ct).ConfigureAwait(false))
                {
                    var index = reader.GetInt32(0);
                    if (index != _answered)
                        throw new InvalidOperationException($"The bucket function's query returned a row of change {index} while change {_answered} was unanswered; its plan does not keep change order.");
                    if (reader.GetBoolean(2))
                    {
                        _answered++;
                        _distinct.Clear();
                        continue;
                    }
                    // Empty bucket ids are dropped (the reference's semantics), NULL ones alike.
                    if (reader.IsDBNull(1) || reader.GetString(1) is not { Length: > 0 } bucket)
                        continue;
                    Keep(changes[index], bucket);
                }
                _distinct.Clear();
            }
        }
    }

    /// <summary>Adds <paramref name="bucket"/> to the change's buckets unless that takes it past the fan-out limit.</summary>
    /// <remarks>
    /// Invariant: a change keeps at most limit bucket ids. Up to the limit nothing is compared (the overlay drops repeats
    /// later); past it the kept ids are made distinct, and from then on only new ones are kept, until one too many marks
    /// the change over the limit and drops them.
    /// </remarks>
    private void Keep(Pending pending, string bucket)
    {
        pending.Returned++;
        if (pending.OverLimit)
            return;
        var buckets = pending.Change.Buckets;
        var limit = _maxBucketsPerChange;
        if (limit <= 0 || buckets.Count < limit)
        {
            buckets.Add(bucket);
            return;
        }
        if (_distinct.Count == 0)
        {
            // The first id past the limit: keep the distinct ones so far, in first-seen order.
            var kept = 0;
            for (var i = 0; i < buckets.Count; i++)
            {
                if (_distinct.Add(buckets[i]))
                    buckets[kept++] = buckets[i];
            }
            while (buckets.Count > kept)
                buckets.RemoveAt(buckets.Count - 1);
        }
        if (!_distinct.Add(bucket))
            return;
        if (_distinct.Count <= limit)
        {
            buckets.Add(bucket);
            return;
        }
        pending.OverLimit = true;
        buckets.Clear();
    }

    /// <summary>The changes as <c>[{"o": index, "t": table, "op": operation, "n": new row, "d": old row}, ...]</c>.</summary>
    private string Document(List<Pending> changes)
    {
        _buffer.ResetWrittenCount();
        var writer = _writer ??= new Utf8JsonWriter(_buffer, s_writerOptions);
        writer.Reset(_buffer);
        writer.WriteStartArray();
        for (var i = 0; i < changes.Count; i++)
        {
            var pending = changes[i];
            var change = pending.Change.Change;
            var batch = pending.Change.Values;
            var layout = change.Layout!;
            writer.WriteStartObject();
            writer.WriteNumber("o"u8, i);
            writer.WriteString("t"u8, change.Table.ChangelogName);
            writer.WriteString("op"u8, OperationName(change.Operation));
            writer.WritePropertyName("n"u8);
            WriteNewRow(writer, batch, change, layout, pending.Filled);
            if (change.OldRowValue >= 0)
            {
                writer.WritePropertyName("d"u8);
                RowJson.WriteRow(writer, batch, change.OldRowValue, layout.Names, layout.TypeOids);
            }
            else if (change.Operation == ChangeOperation.Delete && !change.HasOldRow)
            {
                // A delete's row is the old row: the function sees it as both.
                writer.WritePropertyName("d"u8);
                RowJson.WriteRow(writer, batch, change.RowValue, layout.Names, layout.TypeOids);
            }
            writer.WriteEndObject();
        }
        writer.WriteEndArray();
        writer.Flush();
        return Encoding.UTF8.GetString(_buffer.WrittenSpan);
    }

    private static void WriteNewRow(Utf8JsonWriter writer, ChangeBatch batch, DecodedChange change, RowLayout layout, Dictionary<string, string?>? filled)
    {
        writer.WriteStartObject();
        for (var i = 0; i < layout.Names.Length; i++)
        {
            var value = batch.Value(change.RowValue + i);
            if (value.Kind == TupleValueKind.UnchangedToast && change.OldRowValue >= 0)
                value = batch.Value(change.OldRowValue + i);
            if (value.Kind == TupleValueKind.Text)
            {
                writer.WritePropertyName(layout.Names[i]);
                RowJson.WriteValue(writer, batch.Text(value), layout.TypeOids[i]);
            }
            else if (value.Kind == TupleValueKind.Null)
            {
                writer.WritePropertyName(layout.Names[i]);
                writer.WriteNullValue();
            }
            else if (filled is not null && filled.TryGetValue(layout.Names[i], out var current))
            {
                writer.WritePropertyName(layout.Names[i]);
                if (current is null)
                    writer.WriteNullValue();
                else
                    RowJson.WriteValue(writer, current, layout.TypeOids[i]);
            }
            // Otherwise not sent and nothing to fill it from (a delete's key-only row): left out, as RowJson leaves it out.
        }
        writer.WriteEndObject();
    }

    /// <summary>The operation as the synchro reference names it to bucket functions.</summary>
    internal static string OperationName(ChangeOperation operation) => operation switch
    {
        ChangeOperation.Insert => "create",
        ChangeOperation.Update => "update",
        _ => "delete",
    };

    /// <summary>The first column whose <c>json</c> value, in a row the function would be given, <c>jsonb</c> cannot hold; null when none.</summary>
    private static string? UnstorableJsonColumn(Pending pending)
    {
        var change = pending.Change.Change;
        var batch = pending.Change.Values;
        var layout = change.Layout!;
        for (var i = 0; i < layout.Names.Length; i++)
        {
            if (!RowJson.IsJson(layout.TypeOids[i]))
                continue;
            if (CannotHold(batch, change.RowValue + i) || (change.OldRowValue >= 0 && CannotHold(batch, change.OldRowValue + i)))
                return layout.Names[i];
            if (pending.Filled is not null && pending.Filled.TryGetValue(layout.Names[i], out var current) && current is not null
                && RowJson.JsonbCannotHold(Encoding.UTF8.GetBytes(current)))
                return layout.Names[i];
        }
        return null;

        static bool CannotHold(ChangeBatch batch, int index)
        {
            var value = batch.Value(index);
            return value.Kind == TupleValueKind.Text && RowJson.JsonbCannotHold(batch.Text(value));
        }
    }

    private sealed class Pending(BucketAssignment change)
    {
        public BucketAssignment Change { get; } = change;

        /// <summary>Non-empty bucket ids the function returned for the change.</summary>
        public int Returned { get; set; }

        /// <summary>The change has more distinct buckets than the limit; its rows are only counted.</summary>
        public bool OverLimit { get; set; }

        /// <summary>Forgets what the function returned, for a retry.</summary>
        public void Reset()
        {
            Change.Buckets.Clear();
            Returned = 0;
            OverLimit = false;
        }

        /// <summary>Current values of columns that arrived as unchanged TOAST values and the old row did not have.</summary>
        public Dictionary<string, string?>? Filled { get; set; }
    }
}
