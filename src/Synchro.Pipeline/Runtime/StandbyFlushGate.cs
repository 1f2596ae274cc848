using System.Globalization;
using Npgsql;
using Synchro.Pipeline.Protocol;

namespace Synchro.Pipeline.Runtime;

/// <summary>What the changelog's server said about its standbys at one moment.</summary>
/// <param name="Flushed">The server's flushed WAL: every changelog commit that had returned before the query lies at or before it.</param>
/// <param name="StandbysFlushed">
/// The least WAL position every physical slot of <c>synchronized_standby_slots</c> has flushed (its <c>restart_lsn</c>);
/// <see cref="Lsn.Invalid"/> when a named slot is missing, not physical, or has never been used.
/// </param>
/// <param name="Slots">The slot names of <c>synchronized_standby_slots</c>; empty when the setting is.</param>
/// <param name="Behind">The named slots that have not flushed <paramref name="Flushed"/>, with what each has (or why it has nothing).</param>
internal readonly record struct StandbyFlush(Lsn Flushed, Lsn StandbysFlushed, IReadOnlyList<string> Slots, string Behind);

/// <summary>
/// The failover confirm rule (docs/failover.md): with a failover slot and the changelog in the source cluster, a position may be
/// confirmed to the server only once the changelog commit that recorded it has been flushed by every standby named in the
/// primary's <c>synchronized_standby_slots</c> — the standbys the server syncs failover slots to. Otherwise a standby promoted
/// after it synced the slot past the position, but before it received the commit, resumes past changes whose changelog rows
/// died with the old primary.
/// </summary>
/// <remarks>
/// One query (<see cref="ReadAsync"/>) tells the server's flushed WAL and what each standby slot flushed. The writer commits
/// with <c>synchronous_commit = on</c> and sends its receipt after the commit returned, so the flushed WAL read after a
/// receipt was taken is at or past that receipt's commit: the committer needs no position from the writer.
/// </remarks>
internal sealed class StandbyFlushGate(NpgsqlDataSource changelogServer)
{
    // pg_current_wal_flush_lsn first: the standbys' positions read in the same statement are at most as new.
    private const string Sql = """
        SELECT pg_catalog.pg_current_wal_flush_lsn(),
               pg_catalog.current_setting('synchronized_standby_slots', true),
               (SELECT pg_catalog.array_agg(s.slot_name::text) FROM pg_catalog.pg_replication_slots s),
               (SELECT pg_catalog.array_agg(s.slot_type) FROM pg_catalog.pg_replication_slots s),
               (SELECT pg_catalog.array_agg(s.restart_lsn::text) FROM pg_catalog.pg_replication_slots s)
        """;

    /// <summary>Reads the server's flushed WAL and its standby slots' positions.</summary>
    public async Task<StandbyFlush> ReadAsync(CancellationToken cancellationToken)
    {
        var connection = await changelogServer.OpenConnectionAsync(cancellationToken).ConfigureAwait(false);
        await using (connection.ConfigureAwait(false))
        {
            await using var command = new NpgsqlCommand(Sql, connection);
            await using var reader = await command.ExecuteReaderAsync(cancellationToken).ConfigureAwait(false);
            await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            var flushed = new Lsn((ulong)reader.GetFieldValue<NpgsqlTypes.NpgsqlLogSequenceNumber>(0));
            var slots = reader.IsDBNull(1) ? [] : ParseSlotList(reader.GetString(1));
            var names = reader.IsDBNull(2) ? [] : reader.GetFieldValue<string[]>(2);
            var types = reader.IsDBNull(3) ? [] : reader.GetFieldValue<string[]>(3);
            var restarts = reader.IsDBNull(4) ? [] : reader.GetFieldValue<string?[]>(4);
            return Evaluate(flushed, slots, names, types, restarts);
        }
    }

    /// <summary>The least position the named physical slots flushed; a slot missing, not physical or unused holds everything.</summary>
    internal static StandbyFlush Evaluate(Lsn flushed, IReadOnlyList<string> slots, string[] names, string[] types, string?[] restarts)
    {
        var least = Lsn.MaxValue;
        var behind = new List<string>();
        foreach (var slot in slots)
        {
            var index = Array.IndexOf(names, slot);
            var reached = index >= 0 && types[index] == "physical" && Lsn.TryParse(restarts[index], CultureInfo.InvariantCulture, out var restart) ? restart : Lsn.Invalid;
            least = Lsn.Min(least, reached);
            if (index < 0)
                behind.Add($"{slot} (no such slot)");
            else if (types[index] != "physical")
                behind.Add($"{slot} (a {types[index]} slot, not a standby's)");
            else if (!reached.IsValid)
                behind.Add($"{slot} (never used by a standby)");
            else if (reached < flushed)
                behind.Add(string.Create(CultureInfo.InvariantCulture, $"{slot} at {reached}"));
        }
        if (slots.Count == 0)
            least = Lsn.Invalid;
        return new StandbyFlush(flushed, least, slots, string.Join(", ", behind));
    }

    /// <summary>
    /// The names of a <c>synchronized_standby_slots</c> value as the server reads it (a comma-separated identifier list):
    /// unquoted names folded to lower case, double quotes removed.
    /// </summary>
    internal static List<string> ParseSlotList(string value)
    {
        var slots = new List<string>();
        foreach (var item in value.Split(','))
        {
            var name = item.Trim();
            if (name.Length == 0)
                continue;
            slots.Add(name.Length >= 2 && name[0] == '"' && name[^1] == '"'
                ? name[1..^1].Replace("\"\"", "\"", StringComparison.Ordinal)
                : name.ToLowerInvariant());
        }
        return slots;
    }
}
