using System.Text;
using Npgsql;
using Npgsql.Replication;
using Npgsql.Replication.PgOutput;
using Npgsql.Replication.PgOutput.Messages;
using NpgsqlTypes;
using Synchro.Pipeline.Changelog;

namespace Synchro.Pipeline.LoadHarness.Contenders;

/// <summary>
/// The Go reference's design ported plainly: decoding by Npgsql's plugin (as the Go package uses
/// pglogrepl), then per change one database transaction that selects the record's edges, inserts its
/// changelog rows with one multi-row INSERT, upserts and deletes its edges and commits; after every
/// replication message an upsert of the position. Buckets resolve as ours do: the owner column gives
/// <c>user:&lt;id&gt;</c>, a line takes its order's owner by a query on the source.
/// </summary>
internal static class GoPerChangeContender
{
    private const short Insert = 1;
    private const short Update = 2;
    private const short Delete = 3;

    private const string ChildTable = "order_lines";

    public static async Task<ContenderResult> RunAsync(ContenderSpec spec, CancellationToken ct)
    {
        await using var changelog = new NpgsqlConnection(ContenderNames.AsWriter(spec.ChangelogConnectionString));
        await changelog.OpenAsync(ct);
        await ChangelogSchema.EnsureAsync(changelog, ct);
        // The same durability as our writer asks for: a commit returns once it is in the WAL.
        await ExecuteAsync(changelog, "SET synchronous_commit = on", ct);
        await using var source = new NpgsqlConnection(spec.SourceConnectionString);
        await source.OpenAsync(ct);

        await using var replication = new LogicalReplicationConnection(spec.SourceConnectionString);
        await replication.Open(ct);
        var slot = new PgOutputReplicationSlot(spec.SlotName);
        var options = new PgOutputReplicationOptions(spec.PublicationName, PgOutputProtocolVersion.V1, binary: false, messages: true);

        var usage = ProcessUsage.Now();
        long changes = 0;
        await foreach (var message in replication.StartReplication(slot, options, ct))
        {
            var change = message switch
            {
                InsertMessage m => await ReadAsync(m.Relation, m.NewRow, Insert, ct),
                UpdateMessage m => await ReadAsync(m.Relation, m.NewRow, Update, ct),
                KeyDeleteMessage m => await ReadAsync(m.Relation, m.Key, Delete, ct),
                FullDeleteMessage m => await ReadAsync(m.Relation, m.OldRow, Delete, ct),
                _ => null,
            };
            if (change is not null)
            {
                await ApplyAsync(changelog, source, change, ct);
                changes++;
            }
            await SavePositionAsync(changelog, spec.SlotName, message.WalEnd, ct);
            replication.SetReplicationStatus(message.WalEnd);
            if (changes >= spec.MaxChanges)
                break;
        }
        var result = ProcessUsage.Since(usage, new ContenderResult { Name = spec.Name, Changes = changes });
        return result with
        {
            ChangelogRows = await CountAsync(changelog, "sync_changelog", ct),
            EdgeRows = await CountAsync(changelog, "sync_bucket_edges", ct),
        };
    }

    private sealed record Change(string Table, string RecordId, short Operation, Dictionary<string, string?> Row);

    private static async Task<Change?> ReadAsync(RelationMessage relation, ReplicationTuple tuple, short operation, CancellationToken ct)
    {
        var row = new Dictionary<string, string?>(StringComparer.Ordinal);
        var i = 0;
        await foreach (var value in tuple)
        {
            var name = relation.Columns[i++].ColumnName;
            row[name] = value.IsDBNull || value.IsUnchangedToastedValue ? null : await value.Get<string>(ct);
        }
        if (row.GetValueOrDefault("id") is not { } id)
            return null;
        // A soft delete is an update whose new row has deleted_at set.
        if (operation == Update && row.GetValueOrDefault("deleted_at") is not null)
            operation = Delete;
        return new Change(relation.RelationName, id, operation, row);
    }

    private static async Task ApplyAsync(NpgsqlConnection changelog, NpgsqlConnection source, Change change, CancellationToken ct)
    {
        await using var transaction = await changelog.BeginTransactionAsync(ct);
        var existing = new List<string>();
        await using (var select = new NpgsqlCommand("SELECT bucket_id FROM sync_bucket_edges WHERE table_name = $1 AND record_id = $2", changelog, transaction))
        {
            select.Parameters.AddWithValue(change.Table);
            select.Parameters.AddWithValue(change.RecordId);
            await using var reader = await select.ExecuteReaderAsync(ct);
            while (await reader.ReadAsync(ct))
                existing.Add(reader.GetString(0));
        }

        var entries = new List<(string Bucket, short Operation)>();
        List<string> upsert = [], remove = [];
        if (change.Operation == Delete && existing.Count > 0)
        {
            entries.AddRange(existing.Select(b => (b, Delete)));
            remove.AddRange(existing);
        }
        else
        {
            var desired = await ResolveAsync(source, change, ct);
            if (change.Operation == Delete)
            {
                entries.AddRange(desired.Select(b => (b, Delete)));
            }
            else
            {
                entries.AddRange(desired.Select(b => (b, existing.Contains(b) ? Update : Insert)));
                entries.AddRange(existing.Except(desired).Select(b => (b, Delete)));
                upsert.AddRange(desired);
                remove.AddRange(existing.Except(desired));
            }
        }

        if (entries.Count > 0)
        {
            var sql = new StringBuilder("INSERT INTO sync_changelog (bucket_id, table_name, record_id, operation) VALUES ");
            await using var insert = new NpgsqlCommand { Connection = changelog, Transaction = transaction };
            for (var i = 0; i < entries.Count; i++)
            {
                sql.Append(i == 0 ? "" : ", ").Append('(').Append('$').Append(4 * i + 1).Append(", $").Append(4 * i + 2).Append(", $").Append(4 * i + 3).Append(", $").Append(4 * i + 4).Append(')');
                insert.Parameters.AddWithValue(entries[i].Bucket);
                insert.Parameters.AddWithValue(change.Table);
                insert.Parameters.AddWithValue(change.RecordId);
                insert.Parameters.AddWithValue(entries[i].Operation);
            }
            insert.CommandText = sql.ToString();
            await insert.ExecuteNonQueryAsync(ct);
        }
        foreach (var bucket in upsert)
        {
            await using var command = new NpgsqlCommand("""
                INSERT INTO sync_bucket_edges (table_name, record_id, bucket_id) VALUES ($1, $2, $3)
                ON CONFLICT (table_name, record_id, bucket_id) DO UPDATE SET updated_at = now()
                """, changelog, transaction);
            command.Parameters.AddWithValue(change.Table);
            command.Parameters.AddWithValue(change.RecordId);
            command.Parameters.AddWithValue(bucket);
            await command.ExecuteNonQueryAsync(ct);
        }
        if (remove.Count > 0)
        {
            await using var command = new NpgsqlCommand("DELETE FROM sync_bucket_edges WHERE table_name = $1 AND record_id = $2 AND bucket_id = ANY($3)", changelog, transaction);
            command.Parameters.AddWithValue(change.Table);
            command.Parameters.AddWithValue(change.RecordId);
            command.Parameters.AddWithValue(remove.ToArray());
            await command.ExecuteNonQueryAsync(ct);
        }
        await transaction.CommitAsync(ct);
    }

    private static async Task<List<string>> ResolveAsync(NpgsqlConnection source, Change change, CancellationToken ct)
    {
        string? owner;
        if (change.Table == ChildTable)
        {
            if (change.Row.GetValueOrDefault("order_id") is not { } orderId)
                return [];
            await using var parent = new NpgsqlCommand("SELECT user_id FROM orders WHERE id = $1::bigint", source);
            parent.Parameters.AddWithValue(orderId);
            owner = await parent.ExecuteScalarAsync(ct) as string;
        }
        else
        {
            owner = change.Row.GetValueOrDefault("user_id");
        }
        return string.IsNullOrEmpty(owner) ? [] : ["user:" + owner];
    }

    private static async Task SavePositionAsync(NpgsqlConnection changelog, string slot, NpgsqlLogSequenceNumber position, CancellationToken ct)
    {
        await using var command = new NpgsqlCommand("""
            INSERT INTO sync_wal_position (slot_name, confirmed_lsn, updated_at) VALUES ($1, $2, now())
            ON CONFLICT (slot_name) DO UPDATE SET confirmed_lsn = excluded.confirmed_lsn, updated_at = excluded.updated_at
            """, changelog);
        command.Parameters.AddWithValue(slot);
        command.Parameters.AddWithValue((long)(ulong)position);
        await command.ExecuteNonQueryAsync(ct);
    }

    private static async Task ExecuteAsync(NpgsqlConnection connection, string sql, CancellationToken ct)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync(ct);
    }

    private static async Task<long> CountAsync(NpgsqlConnection connection, string table, CancellationToken ct)
    {
        // The table name is one of the library's constants, never input.
        await using var command = new NpgsqlCommand($"SELECT count(*) FROM {table}", connection);
        return (long)(await command.ExecuteScalarAsync(ct))!;
    }
}
