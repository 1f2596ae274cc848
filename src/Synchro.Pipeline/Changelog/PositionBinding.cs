using System.Globalization;
using Synchro.Pipeline.Protocol;
using Synchro.Pipeline.Replication;

namespace Synchro.Pipeline.Changelog;

/// <summary>Why a persisted position does not fit its source.</summary>
internal enum PositionProblemKind
{
    /// <summary>Saved from another cluster (another system identifier).</summary>
    OtherCluster,

    /// <summary>Saved from another database of this cluster.</summary>
    OtherDatabase,

    /// <summary>Saved on a timeline that is not part of the server's history at that position (a promotion forked before it).</summary>
    OffTimeline,

    /// <summary>Past everything the server has written.</summary>
    AheadOfWal,

    /// <summary>Behind what the slot has confirmed: the changelog lost committed batches.</summary>
    BehindSlot,
}

/// <summary>A persisted position refused, with what happened, what was or would be lost, and how to recover.</summary>
internal sealed record PositionProblem(PositionProblemKind Kind, string Message);

/// <summary>
/// Invariant 8 of docs/architecture.md: a persisted position is used only on the source it was read from. Decides, from the
/// slot's row of <c>sync_wal_position</c> and the source as found (<see cref="SourceState"/>), whether the position fits;
/// every refusal says what happened, what was or would be lost, and the commands that recover.
/// </summary>
/// <remarks>
/// The pipeline confirms to the server only positions it has persisted, and persists only positions the server sent it,
/// so of its own row it knows: the server has written past it, the slot has not been confirmed past it, and both were
/// on one cluster, database and timeline history. A row that breaks one of these was not left by this pipeline on this
/// source as it is: used, it would skip every change up to it without a word, or go on with a gap. A row not yet bound
/// (written before the source columns existed) is checked against the WAL and the slot only.
/// </remarks>
internal static class PositionBinding
{
    /// <summary>Whether <see cref="Verify"/> needs the history of the server's timeline: the row was saved on an earlier one.</summary>
    public static bool NeedsHistory(PersistedPosition? persisted, SourceState source)
        => persisted is { Position.IsValid: true, Source: { } saved }
            && saved.SystemId == source.Identity.SystemId
            && saved.Timeline < source.Identity.Timeline;

    /// <summary>The problem with the position persisted for <paramref name="slotName"/>, or null when it fits (or there is none).</summary>
    /// <param name="slotName">The slot; a valid slot name (<c>[a-z0-9_]+</c>), so it is safe inside the literals of the commands shown.</param>
    /// <param name="persisted">The slot's row, or null when it has none.</param>
    /// <param name="source">The source as found, the slot read before the row and the WAL end after it.</param>
    /// <param name="history">The history of the server's timeline when <see cref="NeedsHistory"/> says so.</param>
    /// <param name="slotConfirmsOnlyPersisted">False when the pipeline confirms positions it does not persist (the load harness's discarding writer).</param>
    public static PositionProblem? Verify(string slotName, PersistedPosition? persisted, SourceState source, TimelineHistory? history, bool slotConfirmsOnlyPersisted = true)
    {
        // No row: the stream starts at the slot's own position. The snapshot's pending marker is handled before streaming.
        if (persisted is not { Position: { IsValid: true } position } row)
            return null;
        var server = source.Identity;
        var recipes = new Recipes(slotName, source);

        if (row.Source is { } saved)
        {
            if (saved.SystemId != server.SystemId)
            {
                return new(PositionProblemKind.OtherCluster,
                    $"The persisted position {position} of slot '{slotName}' was saved from another PostgreSQL cluster (system identifier {saved.SystemId}, "
                    + $"database '{saved.Database}'), but this server is cluster {server.SystemId}: an LSN is an offset into one cluster's WAL, so "
                    + "streaming from it here would skip or repeat changes at random. If a pipeline of that cluster uses the slot name "
                    + $"'{slotName}' with this changelog database, the row is its own: {OwnSlot} If this server replaced that cluster "
                    + $"(rebuilt, restored from a dump), the changelog describes the old one: {recipes.Rebuild}");
            }
            if (saved.DatabaseOid != server.DatabaseOid)
            {
                return new(PositionProblemKind.OtherDatabase,
                    $"The persisted position {position} of slot '{slotName}' was saved from database '{saved.Database}' (OID {saved.DatabaseOid}), but this "
                    + $"pipeline reads database '{server.Database}' (OID {server.DatabaseOid}): a logical slot decodes one database, so the position "
                    + $"says nothing about this one's changes. If a pipeline of '{saved.Database}' uses the slot name '{slotName}' with this changelog "
                    + $"database, the row is its own: {OwnSlot} If '{server.Database}' replaced '{saved.Database}' (dropped and restored, or "
                    + $"created again), the changelog describes the old one: {recipes.Rebuild}");
            }
            if (saved.Timeline != server.Timeline && OffTimeline(slotName, position, saved, server, history, recipes) is { } forked)
                return forked;
        }

        if (position > source.WalEnd)
        {
            var resume = source.SlotConfirmed is { } confirmed
                ? $"If the changelog belongs to this server, resume from the slot's own position {confirmed}: in the changelog database, "
                    + $"{recipes.Forget}. Rows of transactions after it that the changelog already holds are written again, and rows of "
                    + $"transactions this server does not have stay, so have clients resync. Or rebuild: {recipes.Rebuild}"
                : $"To rebuild from this server: {recipes.Rebuild}";
            return new(PositionProblemKind.AheadOfWal,
                $"The persisted position {position} of slot '{slotName}' is ahead of everything this server has written (its WAL ends at "
                + $"{source.WalEnd}, {Bytes(position - source.WalEnd)} before it): the changelog was written from another server or a later "
                + "state of this one — a changelog database restored from a later backup, a source restored from an earlier one, a failover "
                + "to a standby that had not received everything, or another source using the slot name. Streaming from it would skip every "
                + "change up to it without a word, and confirming it would discard them from the slot. If the row belongs to another source: "
                + $"{OwnSlot} {resume}");
        }

        if (slotConfirmsOnlyPersisted && source.SlotConfirmed is { } slot && slot > position)
        {
            return new(PositionProblemKind.BehindSlot,
                $"Replication slot '{slotName}' has been confirmed up to {slot}, {Bytes(slot - position)} past the persisted position {position}: "
                + "the pipeline confirms only positions it has persisted, so the changelog lost the batches between the two — the changelog "
                + "database was restored from an older backup, or the slot was dropped and created again after the position was saved. The "
                + "changes between them are gone from the slot and cannot be read again; streaming on would leave them out of the changelog "
                + $"and out of sync_bucket_edges. Rebuild: {recipes.Rebuild} Or accept the gap: in the changelog database, {recipes.Forget} "
                + $"(the pipeline then resumes at {slot}), and have clients resync every bucket.");
        }
        return null;
    }

    private static PositionProblem? OffTimeline(string slotName, Lsn position, SourceIdentity saved, SourceIdentity server, TimelineHistory? history, Recipes recipes)
    {
        Lsn fork = Lsn.Invalid;
        if (saved.Timeline < server.Timeline)
        {
            if (history is null || history.Timeline != server.Timeline)
                throw new InvalidOperationException($"The history of timeline {server.Timeline} is needed to check a position saved on timeline {saved.Timeline}.");
            if (history.Contains(saved.Timeline, position, out fork))
                return null;
        }
        if (fork.IsValid)
        {
            return new(PositionProblemKind.OffTimeline,
                $"The persisted position {position} of slot '{slotName}' was saved on timeline {saved.Timeline}, but this server is on timeline "
                + $"{server.Timeline}, whose history left timeline {saved.Timeline} at {fork}, {Bytes(position - fork)} before the position: "
                + "the server was promoted from a standby that had not received everything. The changelog holds the changes of transactions "
                + $"after {fork} that this server never had, and streaming from the position would skip this server's own changes after "
                + $"{fork}. Resume from the fork: in the changelog database, UPDATE sync_wal_position SET confirmed_lsn = {SqlBigint(fork)}, "
                + $"source_timeline = {server.Timeline.ToString(CultureInfo.InvariantCulture)} WHERE slot_name = '{slotName}'; then have "
                + $"clients resync the buckets those lost transactions touched. Or rebuild: {recipes.Rebuild}");
        }
        return new(PositionProblemKind.OffTimeline,
            $"The persisted position {position} of slot '{slotName}' was saved on timeline {saved.Timeline}, but this server is on timeline "
            + $"{server.Timeline}, which does not descend from it: the server was restored from a backup taken before a promotion, or it is "
            + "an old primary that came back after a failover. The changelog holds changes this server does not have, and positions of the "
            + $"two histories cannot be compared. Connect the pipeline to the current primary, or rebuild from this server: {recipes.Rebuild}");
    }

    // Two pipelines writing one changelog would interleave seq out of commit order (invariants 3 and 9).
    private const string OwnSlot = "leave the row to its pipeline, and give this pipeline its own slot (SlotName) and its own changelog database.";

    /// <summary>An LSN as the SQL of a <c>confirmed_lsn</c> value (its 64 bits as BIGINT).</summary>
    private static string SqlBigint(Lsn lsn) => $"('{lsn}'::pg_lsn - '0/0')::bigint";

    private static string Bytes(long bytes) => bytes switch
    {
        < 1024 * 1024 => string.Create(CultureInfo.InvariantCulture, $"{bytes:N0} bytes"),
        < 1024L * 1024 * 1024 => string.Create(CultureInfo.InvariantCulture, $"{bytes / (1024.0 * 1024):0.#} MiB"),
        _ => string.Create(CultureInfo.InvariantCulture, $"{bytes / (1024.0 * 1024 * 1024):0.##} GiB"),
    };

    /// <summary>The recovery commands, shown, never run.</summary>
    private readonly struct Recipes(string slotName, SourceState source)
    {
        /// <summary>Drop the row: the pipeline then streams from the slot's own position.</summary>
        public string Forget => $"DELETE FROM sync_wal_position WHERE slot_name = '{slotName}'";

        /// <summary>Start over from the source as it is: a new slot, its snapshot's edges, clients resync.</summary>
        public string Rebuild
        {
            get
            {
                var drop = source.SlotConfirmed is null ? "" : $"on the source, SELECT pg_drop_replication_slot('{slotName}'); ";
                return $"stop the pipeline; {drop}in the changelog database, {Forget}; start the pipeline with InitialSnapshot on (the default: "
                    + "it creates the slot and reloads sync_bucket_edges of the registered tables from its snapshot); then have clients resync "
                    + "their buckets from sync_bucket_edges.";
            }
        }
    }
}
