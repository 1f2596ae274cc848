using Npgsql;
using Synchro.Pipeline.Postgres;
using Synchro.Pipeline.Registry;

namespace Synchro.Pipeline.Buckets;

/// <summary>
/// Buckets of child records: follows the registered parent chain (child → parent → ...) to the first
/// table with an owner or bucket-by column and uses that record's bucket. One query per parent table
/// per chain level per batch, reading the source database's committed state.
/// </summary>
/// <remarks>A missing parent row, or a null foreign key, leaves the change with no bucket.</remarks>
public sealed class ParentChainBucketAssigner : IBucketAssigner
{
    // Reads parent rows by record id, so lookups compare with the id columns' own types and use their index.
    private readonly SourceRows _rows = new();

    /// <inheritdoc/>
    public async Task AssignAsync(BucketAssignmentBatch batch, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(batch);
        var pending = new List<(BucketAssignment Change, TableRegistration Table, string Key)>();
        foreach (var change in batch.Changes)
        {
            if (change.IsDecided || change.Table.BucketColumn is not null || change.Table.ParentForeignKeyColumns is not { } foreignKey)
                continue;
            if (foreignKey.Any(change.IsUnchanged))
                change.KeepExistingBuckets = true;
            else if (batch.Registry.ParentOf(change.Table) is { } parent && ParentKey(parent, foreignKey.Select(change.GetValue).ToArray()) is { } parentId)
                pending.Add((change, parent, parentId));
            else
                change.AssignNone();
        }

        while (pending.Count > 0)
        {
            var next = new List<(BucketAssignment, TableRegistration, string)>();
            foreach (var level in pending.GroupBy(p => p.Table))
            {
                var table = level.Key;
                var found = await LookupTimedAsync(batch.SourceConnection, batch.SourceTimeout, table, batch.Registry, level.Select(p => p.Key).ToHashSet(StringComparer.Ordinal), cancellationToken).ConfigureAwait(false);
                foreach (var (change, _, key) in level)
                {
                    if (!found.TryGetValue(key, out var value))
                        change.AssignNone();
                    else if (table.BucketColumn is not null)
                        AssignFromOwner(change, table, value, batch.BucketIds);
                    else if (value is not null && batch.Registry.ParentOf(table) is { } parent)
                        next.Add((change, parent, value));
                    else
                        change.AssignNone();
                }
            }
            pending = next;
        }
    }

    /// <summary>
    /// The record id of the parent that foreign key values <paramref name="values"/> point to, or null when one is NULL: a
    /// foreign key with a NULL points to no row (as SQL checks none).
    /// </summary>
    private static string? ParentKey(TableRegistration parent, string?[] values)
        => values.Length == parent.IdColumns.Count && Array.IndexOf(values, null) < 0 ? parent.FormatRecordId(values) : null;

    private static void AssignFromOwner(BucketAssignment change, TableRegistration owner, string? value, BucketIdCache bucketIds)
    {
        if (!string.IsNullOrEmpty(value))
            change.Buckets.Add(bucketIds.Get(owner.BucketPrefix, value));
        else if (value is null && owner.GlobalWhenBucketNull)
            change.Buckets.Add(BucketAssignment.GlobalBucket);
        else
            change.AssignNone();
    }

    /// <summary><see cref="LookupAsync"/> under <see cref="WalPipelineOptions.ParentLookupTimeout"/>, when the batch has a session timeout.</summary>
    private async Task<Dictionary<string, string?>> LookupTimedAsync(
        NpgsqlConnection connection, SessionTimeout? session, TableRegistration table, TableRegistry registry, HashSet<string> keys, CancellationToken cancellationToken)
    {
        if (session is not null)
            await session.UseAsync(StatementKind.ParentLookup, cancellationToken).ConfigureAwait(false);
        try
        {
            return await LookupAsync(connection, table, registry, keys, cancellationToken).ConfigureAwait(false);
        }
        catch (PostgresException e) when (session?.AsTimeout(e, $"Looking up {keys.Count} parent row(s) in {table}") is { } timeout)
        {
            throw timeout;
        }
    }

    /// <summary>
    /// For each key (record id) found in <paramref name="table"/>: the text of its bucket column, or the record id of its
    /// own parent (null when its foreign key has a NULL).
    /// </summary>
    private async Task<Dictionary<string, string?>> LookupAsync(
        NpgsqlConnection connection, TableRegistration table, TableRegistry registry, HashSet<string> keys, CancellationToken cancellationToken)
    {
        var columns = table.BucketColumn is { } bucket ? [bucket] : table.ParentForeignKeyColumns!;
        var rows = await _rows.LookupAsync(connection, table, columns, keys, cancellationToken).ConfigureAwait(false);
        var result = new Dictionary<string, string?>(rows.Count, StringComparer.Ordinal);
        foreach (var (key, values) in rows)
        {
            result[key] = table.BucketColumn is not null ? values[0]
                : registry.ParentOf(table) is { } parent ? ParentKey(parent, values)
                : null;
        }
        return result;
    }
}
