using Npgsql;
using Synchro.Pipeline.Registry;
using Synchro.Pipeline.Postgres;

namespace Synchro.Pipeline.Buckets;

/// <summary>
/// Buckets of child records: follows the registered parent chain (child → parent → ...) to the first
/// table with an owner or bucket-by column and uses that record's bucket. One query per parent table
/// per chain level per batch, reading the source database's committed state.
/// </summary>
/// <remarks>A missing parent row, or a null foreign key, leaves the change with no bucket.</remarks>
public sealed class ParentChainBucketAssigner : IBucketAssigner
{
    // The SQL type of each table's id column, so lookups compare with the column's own type and use its index.
    private readonly Dictionary<TableRegistration, string> _idTypes = [];

    /// <inheritdoc/>
    public async Task AssignAsync(BucketAssignmentBatch batch, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(batch);
        var pending = new List<(BucketAssignment Change, TableRegistration Table, string Key)>();
        foreach (var change in batch.Changes)
        {
            if (change.IsDecided || change.Table.BucketColumn is not null || change.Table.ParentForeignKeyColumn is not { } foreignKey)
                continue;
            if (change.IsUnchanged(foreignKey))
                change.KeepExistingBuckets = true;
            else if (change.GetValue(foreignKey) is { } parentId && batch.Registry.ParentOf(change.Table) is { } parent)
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
                var found = await LookupTimedAsync(batch.SourceConnection, batch.SourceTimeout, table, level.Select(p => p.Key).Distinct().ToArray(), cancellationToken).ConfigureAwait(false);
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
    private async Task<Dictionary<string, string?>> LookupTimedAsync(NpgsqlConnection connection, SessionTimeout? session, TableRegistration table, string[] keys, CancellationToken cancellationToken)
    {
        if (session is not null)
            await session.UseAsync(StatementKind.ParentLookup, cancellationToken).ConfigureAwait(false);
        try
        {
            return await LookupAsync(connection, table, keys, cancellationToken).ConfigureAwait(false);
        }
        catch (PostgresException e) when (session?.AsTimeout(e, $"Looking up {keys.Length} parent row(s) in {table}") is { } timeout)
        {
            throw timeout;
        }
    }

    /// <summary>For each key found in <paramref name="table"/>: the text of its bucket column, or of its own parent foreign key.</summary>
    private async Task<Dictionary<string, string?>> LookupAsync(NpgsqlConnection connection, TableRegistration table, string[] keys, CancellationToken cancellationToken)
    {
        var idType = await IdTypeAsync(connection, table, cancellationToken).ConfigureAwait(false);
        var column = table.BucketColumn ?? table.ParentForeignKeyColumn!;
        var id = PgIdentifier.Quote(table.IdColumn);
        // Identifiers are quoted; the id type comes from the server's own catalog (format_type).
        var sql = $"SELECT {id}::text, {PgIdentifier.Quote(column)}::text FROM {PgIdentifier.QuoteQualified(table.Schema, table.Name)} WHERE {id} = ANY(@keys::{idType}[])";
        var result = new Dictionary<string, string?>(keys.Length, StringComparer.Ordinal);
        await using var command = new NpgsqlCommand(sql, connection);
        command.Parameters.AddWithValue("keys", keys);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
            result[reader.GetString(0)] = reader.IsDBNull(1) ? null : reader.GetString(1);
        return result;
    }

    private async Task<string> IdTypeAsync(NpgsqlConnection connection, TableRegistration table, CancellationToken cancellationToken)
    {
        if (_idTypes.TryGetValue(table, out var type))
            return type;
        await using var command = new NpgsqlCommand(
            "SELECT pg_catalog.format_type(a.atttypid, a.atttypmod) FROM pg_catalog.pg_attribute a WHERE a.attrelid = pg_catalog.to_regclass(@table) AND a.attname = @column AND NOT a.attisdropped",
            connection);
        command.Parameters.AddWithValue("table", PgIdentifier.QuoteQualified(table.Schema, table.Name));
        command.Parameters.AddWithValue("column", table.IdColumn);
        type = await command.ExecuteScalarAsync(cancellationToken).ConfigureAwait(false) as string
            ?? throw new InvalidOperationException($"Column {table.IdColumn} of {table} was not found in the source database.");
        _idTypes[table] = type;
        return type;
    }
}
