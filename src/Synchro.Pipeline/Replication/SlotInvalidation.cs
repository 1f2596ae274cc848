using System.Text.RegularExpressions;

namespace Synchro.Pipeline.Replication;

/// <summary>
/// Why the server invalidated a slot (<c>pg_replication_slots.invalidation_reason</c>, PostgreSQL 17+), and the fatal
/// error that says what was lost and what to change for that reason.
/// </summary>
/// <remarks>
/// PostgreSQL 15 invalidates a slot only for removed WAL and reports it as <c>wal_status</c> 'lost'; 16 adds the
/// conflicts of a slot on a standby (still only 'lost'); 17 names the reason, and 18 adds <see cref="IdleTimeout"/>.
/// An invalidated slot never decodes again: every reason ends in dropping and recreating it, and a resync.
/// </remarks>
internal static partial class SlotInvalidation
{
    /// <summary>The WAL the slot needed was removed (past <c>max_slot_wal_keep_size</c>).</summary>
    public const string WalRemoved = "wal_removed";

    /// <summary>Catalog rows the slot needed were removed (a slot on a standby whose primary vacuumed them).</summary>
    public const string RowsRemoved = "rows_removed";

    /// <summary>The primary's <c>wal_level</c> fell below logical (a slot on a standby).</summary>
    public const string WalLevelInsufficient = "wal_level_insufficient";

    /// <summary>Inactive longer than <c>idle_replication_slot_timeout</c> (PostgreSQL 18).</summary>
    public const string IdleTimeout = "idle_timeout";

    /// <summary>The version from which <c>pg_replication_slots</c> has <c>invalidation_reason</c>, <c>inactive_since</c>, <c>failover</c> and <c>synced</c>.</summary>
    public const int ReasonSinceVersion = 17;

    /// <summary>
    /// The fatal error of the invalidated slot <paramref name="slotName"/>.
    /// </summary>
    /// <param name="slotName">A valid slot name (safe inside the quoted literal of the suggested drop).</param>
    /// <param name="reason">The server's <c>invalidation_reason</c>; null where it gives none (before 17).</param>
    /// <param name="observed">How it was seen: <c>invalidation_reason 'wal_removed'</c>, <c>wal_status 'lost'</c>, the server's error.</param>
    public static string Message(string slotName, string? reason, string observed)
        => $"Replication slot '{slotName}' was invalidated by the server ({observed}): {Cause(reason)}, so the changes since the last "
            + $"committed position are lost. Drop the slot (SELECT pg_drop_replication_slot('{slotName}')) and restart the pipeline to "
            + $"recreate it, resync clients (their changelog has a gap), and {Prevention(reason)} so it does not happen again.";

    /// <summary>How the slot was seen invalidated: its reason where the server names one, else its <c>wal_status</c>.</summary>
    public static string Observed(string? reason) => reason is null ? "wal_status 'lost'" : $"invalidation_reason '{reason}'";

    /// <summary>The reason in the detail of the server's refusal to use an invalidated slot (<c>… invalidated due to "wal_removed".</c>), if it is there.</summary>
    /// <remarks>Npgsql redacts the detail unless the connection string sets <c>Include Error Detail</c>.</remarks>
    public static string? ReasonInDetail(string? detail)
        => detail is not null && DueToPattern().Match(detail) is { Success: true } match ? match.Groups[1].Value : null;

    private static string Cause(string? reason) => reason switch
    {
        WalRemoved => "it held back more WAL than max_slot_wal_keep_size allows, and the WAL it still needed was removed",
        RowsRemoved => "the catalog rows it needed to decode were removed (a slot on a standby: the primary's vacuum removed rows the standby's slot still needed)",
        WalLevelInsufficient => "wal_level on the primary is below logical, so the WAL no longer carries what logical decoding needs",
        IdleTimeout => "no consumer used it for longer than idle_replication_slot_timeout",
        null => "the WAL or rows it still needed were removed (typically it held back more WAL than max_slot_wal_keep_size allows)",
        _ => $"the server gives the reason '{reason}'",
    };

    private static string Prevention(string? reason) => reason switch
    {
        RowsRemoved => "on the standby set hot_standby_feedback = on and stream through a physical slot on the primary (primary_slot_name), "
            + "so the primary keeps the rows the standby's slots need",
        WalLevelInsufficient => "keep wal_level = logical on the primary (a restart applies it)",
        IdleTimeout => "raise idle_replication_slot_timeout (0 turns it off), or keep the pipeline running: the timeout counts only while no consumer is connected",
        WalRemoved or null => "raise max_slot_wal_keep_size (or find why the pipeline fell behind)",
        _ => "remove that cause (see the PostgreSQL documentation of pg_replication_slots.invalidation_reason)",
    };

    [GeneratedRegex("invalidated due to \"([a-z_]+)\"", RegexOptions.CultureInvariant)]
    private static partial Regex DueToPattern();
}
