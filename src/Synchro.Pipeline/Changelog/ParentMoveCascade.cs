using System.Data;
using Npgsql;
using NpgsqlTypes;
using Synchro.Pipeline.Postgres;
using Synchro.Pipeline.Registry;

namespace Synchro.Pipeline.Changelog;

/// <summary>
/// When a batch changes a record's buckets, moves the descendants that take their buckets from it through the parent
/// chain (docs/buckets.md, "When a parent moves"): each gets the edge diff of its move, written in the batch's changelog
/// transaction after the batch's own rows.
/// </summary>
/// <remarks>
/// <para>
/// Invariant: a descendant's buckets after the cascade are its moved ancestor's edges after the batch, which is what the
/// parent-chain rule gives a child whose parent has those edges; the diff is taken against the edges in the changelog
/// transaction (the batch's own changes included), so a descendant the batch changed too is written once.
/// </para>
/// <para>
/// Descendants are read on the source in one <c>REPEATABLE READ READ ONLY</c> transaction, through one cursor per child
/// table per chunk of moved parents, fetched <see cref="ChunkRows"/> at a time; each fetched chunk's edges are loaded, its
/// rows and edges written, and the chunk's moved records cascade further before the next fetch (depth first). Memory is
/// bounded by depth × <see cref="ChunkRows"/> whatever the number of descendants. A batch that moves no record of a
/// table with inheriting children costs nothing: no query.
/// </para>
/// </remarks>
internal sealed class ParentMoveCascade
{
    /// <summary>The default rows per fetched chunk of descendants, and parents per cursor.</summary>
    public const int DefaultChunkRows = 5_000;

    private const string ColumnTypesSql = """
        SELECT a.attname::text, pg_catalog.format_type(a.atttypid, a.atttypmod)
        FROM pg_catalog.pg_attribute a WHERE a.attrelid = pg_catalog.to_regclass($1) AND a.attname = ANY($2) AND a.attnum > 0 AND NOT a.attisdropped
        """;

    // Parent table (by changelog name) -> its child tables that inherit their buckets through the chain.
    private readonly Dictionary<string, (TableRegistration Parent, List<TableRegistration> Children)> _byParentName = new(StringComparer.Ordinal);
    // Per child table: the SELECT of the descendants of a set of parents (parameters: one array per foreign-key column).
    private readonly Dictionary<TableRegistration, string> _selects = [];
    private int _cursors;
    private readonly Buckets.SourceRows _rows = new();

    public ParentMoveCascade(TableRegistry registry, int chunkRows = DefaultChunkRows)
    {
        Limits = ChangelogLimits.Default;
        ArgumentNullException.ThrowIfNull(registry);
        ArgumentOutOfRangeException.ThrowIfLessThan(chunkRows, 1);
        ChunkRows = chunkRows;
        foreach (var table in registry)
        {
            // Only children whose buckets the parent-chain rule decides: no own column, no function of their own.
            if (table.ParentForeignKeyColumns is null || table.BucketColumn is not null || registry.BucketFunctionOf(table) is not null || registry.ParentOf(table) is not { } parent)
                continue;
            if (!_byParentName.TryGetValue(parent.ChangelogName, out var entry))
                _byParentName[parent.ChangelogName] = entry = (parent, []);
            entry.Children.Add(table);
        }
    }

    /// <summary>The writer's limits: a descendant whose record id the changelog cannot hold is never in a bucket (its own changes are rule failures), so it is left out.</summary>
    public ChangelogLimits Limits { get; init; }

    /// <summary>Descendants per fetch, and moved parents per cursor.</summary>
    public int ChunkRows { get; }

    /// <summary>Whether any registered table has children that inherit from it; false makes the cascade a no-op.</summary>
    public bool IsNeeded => _byParentName.Count > 0;

    /// <summary>Whether records of the changelog table <paramref name="tableName"/> have inheriting children.</summary>
    public bool HasChildren(string tableName) => _byParentName.ContainsKey(tableName);

    /// <summary>What one cascade wrote.</summary>
    public readonly record struct Result(int Descendants, int Rows, int Queries);

    /// <summary>
    /// Moves the descendants of <paramref name="moved"/> (records whose buckets the batch changed, with their buckets now)
    /// and writes their rows and edges on <paramref name="changelog"/> inside its open transaction.
    /// </summary>
    public async Task<Result> CascadeAsync(
        NpgsqlConnection changelog, NpgsqlConnection source, SessionTimeout? sourceTimeout,
        IReadOnlyCollection<(RecordKey Record, IReadOnlyList<string> Buckets)> moved, CancellationToken cancellationToken)
    {
        var state = new State(changelog, source, sourceTimeout);
        // One snapshot of the source for every level, read only.
        var transaction = await source.BeginTransactionAsync(IsolationLevel.RepeatableRead, cancellationToken).ConfigureAwait(false);
        await using (transaction.ConfigureAwait(false))
        {
            await using (var readOnly = new NpgsqlCommand("SET TRANSACTION READ ONLY", source, transaction))
                await readOnly.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
            foreach (var byTable in moved.GroupBy(m => m.Record.TableName, StringComparer.Ordinal))
            {
                if (!_byParentName.TryGetValue(byTable.Key, out var entry))
                    continue;
                var parents = byTable.Select(m => (m.Record.RecordId, m.Buckets)).ToList();
                var softDeleted = await SoftDeletedAsync(state, entry.Parent, parents, cancellationToken).ConfigureAwait(false);
                if (softDeleted.Count > 0)
                    parents.RemoveAll(p => softDeleted.Contains(p.RecordId));
                await CascadeLevelAsync(state, entry.Parent, entry.Children, parents, cancellationToken).ConfigureAwait(false);
            }
            await transaction.CommitAsync(cancellationToken).ConfigureAwait(false);
        }
        return new Result(state.Descendants, state.Rows, state.Queries);
    }

    /// <summary>
    /// The records of <paramref name="parents"/> left with no bucket that are soft-deleted on the source. The parent-chain rule
    /// reads a parent's row whether or not it is soft-deleted, so their children keep the buckets they have: no move.
    /// </summary>
    private async Task<HashSet<string>> SoftDeletedAsync(
        State state, TableRegistration parent, List<(string Id, IReadOnlyList<string> Buckets)> parents, CancellationToken cancellationToken)
    {
        var found = new HashSet<string>(StringComparer.Ordinal);
        if (parent.SoftDeleteColumn is not { } softDelete)
            return found;
        var emptied = parents.Where(p => p.Buckets.Count == 0).Select(p => p.Id).ToList();
        if (emptied.Count == 0)
            return found;
        if (state.SourceTimeout is { } timeout)
            await timeout.UseAsync(StatementKind.ParentLookup, cancellationToken).ConfigureAwait(false);
        state.Queries++;
        try
        {
            foreach (var (id, values) in await _rows.LookupAsync(state.Source, parent, [softDelete], emptied, cancellationToken).ConfigureAwait(false))
            {
                if (values[0] is not null)
                    found.Add(id);
            }
        }
        catch (PostgresException e) when (state.SourceTimeout?.AsTimeout(e, $"Looking up {emptied.Count} deleted parent row(s) in {parent}") is { } timeoutError)
        {
            throw timeoutError;
        }
        return found;
    }

    private sealed class State(NpgsqlConnection changelog, NpgsqlConnection source, SessionTimeout? sourceTimeout)
    {
        public NpgsqlConnection Changelog { get; } = changelog;
        public NpgsqlConnection Source { get; } = source;
        public SessionTimeout? SourceTimeout { get; } = sourceTimeout;
        public int Descendants { get; set; }
        public int Rows { get; set; }
        public int Queries { get; set; }
    }

    /// <summary>Moves the children of <paramref name="parents"/> (record ids of <paramref name="parent"/> and their buckets now), depth first.</summary>
    private async Task CascadeLevelAsync(
        State state, TableRegistration parent, List<TableRegistration> children, List<(string Id, IReadOnlyList<string> Buckets)> parents, CancellationToken cancellationToken)
    {
        foreach (var child in children)
        {
            for (var start = 0; start < parents.Count; start += ChunkRows)
            {
                var chunk = parents.GetRange(start, Math.Min(ChunkRows, parents.Count - start));
                await CascadeChunkAsync(state, parent, child, chunk, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    private async Task CascadeChunkAsync(
        State state, TableRegistration parent, TableRegistration child, List<(string Id, IReadOnlyList<string> Buckets)> parents, CancellationToken cancellationToken)
    {
        var bucketsOf = new Dictionary<string, IReadOnlyList<string>>(parents.Count, StringComparer.Ordinal);
        var keyColumns = child.ParentForeignKeyColumns!;
        var values = new string?[keyColumns.Count][];
        for (var k = 0; k < values.Length; k++)
            values[k] = new string?[parents.Count];
        var count = 0;
        foreach (var (parentRecord, buckets) in parents)
        {
            string?[] parts;
            if (!parent.HasCompositeId)
                parts = [parentRecord];
            else if (!parent.TryParseRecordId(parentRecord, out parts))
                continue;
            bucketsOf[parentRecord] = buckets;
            for (var k = 0; k < values.Length; k++)
                values[k][count] = parts[k];
            count++;
        }
        if (count == 0)
            return;

        var select = await SelectAsync(state.Source, child, cancellationToken).ConfigureAwait(false);
        var cursor = "synchro_cascade_" + (++_cursors).ToString(System.Globalization.CultureInfo.InvariantCulture);
        var declare = new NpgsqlCommand($"DECLARE {cursor} NO SCROLL CURSOR FOR {select}", state.Source);
        await using (declare.ConfigureAwait(false))
        {
            for (var k = 0; k < values.Length; k++)
                declare.Parameters.Add(new NpgsqlParameter<string?[]> { TypedValue = values[k][..count], NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
            await declare.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
        }

        var idCount = child.IdColumns.Count;
        var keys = new List<RecordKey>(Math.Min(ChunkRows, 1024));
        var targets = new List<IReadOnlyList<string>>(Math.Min(ChunkRows, 1024));
        var deleted = new List<bool>(Math.Min(ChunkRows, 1024));
        var childHasChildren = _byParentName.TryGetValue(child.ChangelogName, out var grandchildren);
        var fetch = $"FETCH FORWARD {ChunkRows.ToString(System.Globalization.CultureInfo.InvariantCulture)} FROM {cursor}";
        var id = new string?[idCount];
        var parentKey = new string?[keyColumns.Count];
        while (true)
        {
            keys.Clear();
            targets.Clear();
            deleted.Clear();
            if (state.SourceTimeout is { } timeout)
                await timeout.UseAsync(StatementKind.ParentLookup, cancellationToken).ConfigureAwait(false);
            state.Queries++;
            try
            {
                var command = new NpgsqlCommand(fetch, state.Source);
                await using (command.ConfigureAwait(false))
                {
                    var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
                    await using (reader.ConfigureAwait(false))
                    {
                        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                        {
                            for (var k = 0; k < idCount; k++)
                                id[k] = reader.IsDBNull(k) ? null : reader.GetString(k);
                            for (var k = 0; k < parentKey.Length; k++)
                                parentKey[k] = reader.IsDBNull(idCount + k) ? null : reader.GetString(idCount + k);
                            // Matched by equality, so no key part is NULL; the parent's id is its text form as the changelog has it.
                            var parentId = parent.HasCompositeId ? parent.FormatRecordId(parentKey) : parentKey[0]!;
                            if (id[0] is null && !child.HasCompositeId)
                                continue;
                            var recordId = child.HasCompositeId ? child.FormatRecordId(id) : id[0]!;
                            if (Limits.RecordIdProblem(recordId) is not null)
                                continue;
                            keys.Add(new RecordKey(child.ChangelogName, recordId));
                            targets.Add(bucketsOf.TryGetValue(parentId, out var b) ? b : []);
                            deleted.Add(reader.GetBoolean(idCount + parentKey.Length));
                        }
                    }
                }
            }
            catch (PostgresException e) when (state.SourceTimeout?.AsTimeout(e, $"Reading the children in {child} of {count} moved parent(s) of {parent}") is { } timeoutError)
            {
                throw timeoutError;
            }
            if (keys.Count == 0)
                break;

            var moved = await WriteMovesAsync(state, keys, targets, deleted, childHasChildren, cancellationToken).ConfigureAwait(false);
            if (moved.Count > 0)
                await CascadeLevelAsync(state, child, grandchildren.Children, moved, cancellationToken).ConfigureAwait(false);
        }
        await using (var close = new NpgsqlCommand($"CLOSE {cursor}", state.Source))
            await close.ExecuteNonQueryAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Writes the edge diff of each of <paramref name="keys"/> moving to its target buckets; returns those that moved when they have children.</summary>
    private static async Task<List<(string Id, IReadOnlyList<string> Buckets)>> WriteMovesAsync(
        State state, List<RecordKey> keys, List<IReadOnlyList<string>> targets, List<bool> deleted, bool collectMoved, CancellationToken cancellationToken)
    {
        var edges = await ChangelogStore.LoadEdgesAsync(state.Changelog, keys, cancellationToken).ConfigureAwait(false);
        var rows = new List<ChangelogRow>();
        var added = new List<(RecordKey, string)>();
        var removed = new List<(RecordKey, string)>();
        var moved = new List<(string, IReadOnlyList<string>)>();
        for (var i = 0; i < keys.Count; i++)
        {
            var record = keys[i];
            // A soft-deleted descendant is in no bucket, but its own children still inherit through its row.
            var next = deleted[i] ? [] : targets[i];
            IReadOnlyList<string> existing = edges.TryGetValue(record, out var loaded) ? loaded : [];
            var changed = false;
            foreach (var bucket in next)
            {
                if (!existing.Contains(bucket, StringComparer.Ordinal))
                {
                    rows.Add(new ChangelogRow(bucket, record.TableName, record.RecordId, ChangeOperation.Insert));
                    added.Add((record, bucket));
                    changed = true;
                }
            }
            foreach (var bucket in existing)
            {
                if (!next.Contains(bucket, StringComparer.Ordinal))
                {
                    rows.Add(new ChangelogRow(bucket, record.TableName, record.RecordId, ChangeOperation.Delete));
                    removed.Add((record, bucket));
                    changed = true;
                }
            }
            // Deeper levels follow the descendant's buckets now; one that did not move moves none of its own.
            if ((changed || deleted[i]) && collectMoved)
                moved.Add((record.RecordId, targets[i]));
        }
        if (rows.Count > 0)
        {
            await ChangelogStore.WriteChangelogAsync(state.Changelog, rows, cancellationToken).ConfigureAwait(false);
            await ChangelogStore.ApplyEdgesAsync(state.Changelog, added, removed, cancellationToken).ConfigureAwait(false);
            state.Rows += rows.Count;
        }
        state.Descendants += keys.Count;
        return moved;
    }

    /// <summary>The SELECT of <paramref name="child"/>'s rows whose foreign key is one of the parameter arrays' rows: id columns then key columns, as text, then whether it is soft-deleted.</summary>
    private async Task<string> SelectAsync(NpgsqlConnection source, TableRegistration child, CancellationToken cancellationToken)
    {
        if (_selects.TryGetValue(child, out var select))
            return select;
        var keyColumns = child.ParentForeignKeyColumns!;
        var types = new Dictionary<string, string>(StringComparer.Ordinal);
        var command = new NpgsqlCommand(ColumnTypesSql, source)
        {
            Parameters =
            {
                new NpgsqlParameter<string> { TypedValue = PgIdentifier.QuoteQualified(child.Schema, child.Name) },
                new NpgsqlParameter<string[]> { TypedValue = [.. keyColumns] },
            },
        };
        await using (command.ConfigureAwait(false))
        {
            var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                    types[reader.GetString(0)] = reader.GetString(1);
            }
        }
        var typed = keyColumns.Select(c => types.TryGetValue(c, out var type)
            ? type
            : throw new InvalidOperationException($"Column {c} of {child} was not found in the source database; fix ParentForeignKeyColumns of {child}.")).ToArray();
        var from = PgIdentifier.QuoteQualified(child.Schema, child.Name);
        var softDeleted = child.SoftDeleteColumn is { } softDelete ? $"t.{PgIdentifier.Quote(softDelete)} IS NOT NULL" : "false";
        // Each key compared in its column's own type, so the foreign key's index can serve it; probed per parent when one leads with it.
        var probe = await KeyLookup.HasLeadingIndexAsync(source, from, keyColumns, cancellationToken).ConfigureAwait(false);
        select = KeyLookup.Select(
            child.IdColumns.Concat(keyColumns).Select(c => "t." + PgIdentifier.Quote(c) + "::text").Append(softDeleted), from,
            keyColumns.Select((c, k) => new KeyLookup.Key(c, typed[k])).ToArray(), probe);
        _selects[child] = select;
        return select;
    }
}
