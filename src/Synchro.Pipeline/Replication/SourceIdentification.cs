using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;
using Npgsql;
using Npgsql.Replication;
using NpgsqlTypes;
using Synchro.Pipeline.Protocol;

namespace Synchro.Pipeline.Replication;

/// <summary>The source database's OID and name, and its slot's confirmed position (null when the slot does not exist).</summary>
internal sealed record SourceDatabase(uint Oid, string Name, Lsn? SlotConfirmed);

/// <summary>
/// Reads what identifies the source and how far it goes (<see cref="SourceState"/>), in two steps so that a caller can read
/// the persisted position in between: the slot first, the server's WAL end last. A pipeline running meanwhile persists a
/// position before it confirms it and the server flushes WAL before sending it, so in that order its progress never
/// looks like a position behind the slot or ahead of the WAL.
/// </summary>
internal static class SourceIdentification
{
    // A slot of the same name in another database is not this pipeline's (the start-up checks say so); it is ignored here.
    private const string DatabaseSql = """
        SELECT d.oid, d.datname::text, s.confirmed_flush_lsn, s.slot_name IS NOT NULL
        FROM pg_catalog.pg_database d
        LEFT JOIN pg_catalog.pg_replication_slots s ON s.slot_name = @slot AND s.database = d.datname
        WHERE d.datname = pg_catalog.current_database()
        """;

    /// <summary>The first step, on a normal connection to the source database.</summary>
    public static async Task<SourceDatabase> ReadDatabaseAsync(NpgsqlConnection connection, string slotName, CancellationToken ct)
    {
        var command = new NpgsqlCommand(DatabaseSql, connection);
        await using (command.ConfigureAwait(false))
        {
            command.Parameters.Add(new NpgsqlParameter<string>("slot", NpgsqlDbType.Text) { TypedValue = slotName });
            var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                await reader.ReadAsync(ct).ConfigureAwait(false);
                Lsn? confirmed = !reader.GetBoolean(3) ? null
                    : reader.IsDBNull(2) ? Lsn.Invalid
                    : reader.GetFieldValue<NpgsqlLogSequenceNumber>(2);
                return new SourceDatabase(reader.GetFieldValue<uint>(0), reader.GetString(1), confirmed);
            }
        }
    }

    /// <summary>The last step: <c>IDENTIFY_SYSTEM</c> on a replication connection to the same database (before it streams).</summary>
    public static async Task<SourceState> IdentifyAsync(ReplicationConnection replication, SourceDatabase database, CancellationToken ct)
    {
        var system = await replication.IdentifySystem(ct).ConfigureAwait(false);
        var systemId = ulong.Parse(system.SystemId, NumberStyles.None, CultureInfo.InvariantCulture);
        return new SourceState(new SourceIdentity(systemId, system.Timeline, database.Oid, database.Name), system.XLogPos, database.SlotConfirmed);
    }

    /// <summary>The history of <paramref name="timeline"/> (<c>TIMELINE_HISTORY</c>); timeline 1 has none.</summary>
    /// <exception cref="FormatException">The server's history file is not of the form it writes.</exception>
    public static async Task<TimelineHistory> ReadHistoryAsync(ReplicationConnection replication, uint timeline, CancellationToken ct)
    {
        if (timeline <= 1)
            return TimelineHistory.Initial;
        byte[] content;
        try
        {
            content = (await replication.TimelineHistory(timeline, ct).ConfigureAwait(false)).Content;
        }
        catch (InvalidCastException)
        {
            // Npgsql 10 reads the file's content as bytea, but PostgreSQL 15 and older send it as text, and the cast fails
            // after the whole reply was read (the connection stays usable). Its own row reader returns the text.
            var row = await ReadSingleRow(replication, $"TIMELINE_HISTORY {timeline.ToString(CultureInfo.InvariantCulture)}", ct).ConfigureAwait(false);
            content = row[1] switch
            {
                string text => Encoding.UTF8.GetBytes(text),
                byte[] bytes => bytes,
                var other => throw new FormatException($"The server sent the history of timeline {timeline} as {other?.GetType().Name ?? "null"}."),
            };
        }
        return TimelineHistory.Parse(timeline, content);
    }

    [UnsafeAccessor(UnsafeAccessorKind.Method, Name = "ReadSingleRow")]
    private static extern Task<object[]> ReadSingleRow(ReplicationConnection connection, string command, CancellationToken cancellationToken);
}
