using System.Globalization;
using Synchro.Pipeline.Cli.Output;

namespace Synchro.Pipeline.Cli.Status;

/// <summary>The status as its verdict, then an aligned two-column table: coloured on a terminal, plain lines when redirected.</summary>
internal static class StatusView
{
    private const int LabelWidth = 20;

    public static void Write(StatusReport report, Terminal output)
    {
        WriteVerdict(report.Verdict, output);
        var slot = report.Slot;
        output.WriteLine(output.Paint($"Slot {report.SlotName} on {report.Source}", Tone.Strong));
        if (!slot.Exists)
        {
            Row(output, "exists", output.Paint("no", Tone.Bad) + " — nothing consumes changes for it; `run` creates it (the changelog then starts from that moment)");
            Row(output, "server WAL", report.ServerWalLsn + (report.InRecovery ? " (standby: last replayed)" : ""));
        }
        else
        {
            Row(output, "active", slot.Active == true
                ? output.Paint("yes", Tone.Good) + $" (pid {slot.ActivePid}{Client(slot)})"
                : output.Paint("no", Tone.Warning) + " — no consumer is connected; the slot retains WAL until one is");
            Row(output, "plugin", $"{slot.Plugin} ({slot.SlotType} slot, database {slot.Database})");
            Row(output, "wal_status", slot.WalStatus switch
            {
                null => "(not reported before PostgreSQL 13)",
                "lost" => output.Paint("lost", Tone.Bad) + " — the slot was invalidated; drop and recreate it, then resync clients",
                "unreserved" => output.Paint("unreserved", Tone.Warning) + " — about to exceed max_slot_wal_keep_size",
                var status => status,
            });
            if (slot.InvalidationReason is { } reason)
                Row(output, "invalidation_reason", output.Paint(reason, Tone.Bad) + Prevention(reason));
            Row(output, "failover", slot.Failover switch
            {
                null => "(not reported before PostgreSQL 17)",
                true => "on" + (slot.Synced == true ? " (synced: this standby's copy of the primary's slot)" : ""),
                false => "off",
            });
            if (slot.InactiveSince is { } inactive)
                Row(output, "inactive_since", Time(inactive));
            Row(output, "safe_wal_size", slot.SafeWalSize is { } safe ? Bytes(safe) : "unlimited (max_slot_wal_keep_size = -1)");
            Row(output, "two_phase", slot.TwoPhase switch { null => "(not reported before PostgreSQL 14)", true => "on", false => "off" });
            Row(output, "restart_lsn", slot.RestartLsn ?? "-");
            Row(output, "confirmed_flush_lsn", slot.ConfirmedFlushLsn ?? "-");
            Row(output, "server WAL", report.ServerWalLsn + (report.InRecovery ? " (standby: last replayed)" : ""));
            Row(output, "lag", slot.LagBytes is { } lag ? $"{Bytes(lag)} of WAL not yet confirmed" : "-");
            Row(output, "WAL retained", slot.RetainedWalBytes is { } retained ? Bytes(retained) : "-");
        }

        var changelog = report.Changelog;
        output.WriteLine(output.Paint($"Changelog on {changelog.Target}", Tone.Strong));
        if (!changelog.TablesExist)
        {
            Row(output, "sidecar tables", output.Paint("missing", Tone.Warning) + $" ({string.Join(", ", changelog.MissingTables)}); `migrate` or `run` creates them");
            return;
        }
        Row(output, "persisted position", changelog.PersistedLsn is null
            ? output.Paint("none", Tone.Warning) + " — nothing committed for this slot yet"
            : changelog.PositionProblems.Count > 0
                ? $"{changelog.PersistedLsn} at {Time(changelog.PersistedAt)}; " + output.Paint("refused", Tone.Bad) + " — `run` will not start from it (below)"
                : $"{changelog.PersistedLsn} at {Time(changelog.PersistedAt)}{Relative(changelog.PersistedAheadOfSlotBytes)}");
        foreach (var problem in changelog.PositionProblems)
            Row(output, "position error", output.Paint(problem, Tone.Bad));
        if (changelog.PositionUnchecked is { } notChecked)
            Row(output, "position check", output.Paint(notChecked, Tone.Warning));
        Row(output, "changelog", changelog.LastSeq is { } seq
            ? $"last seq {seq} at {Time(changelog.LastRowAt)}; {Rows(changelog.ApproximateRows)}{Bytes(changelog.TotalBytes ?? 0)} with indexes"
            : $"empty; {Bytes(changelog.TotalBytes ?? 0)} with indexes");
        Row(output, "rule failures", changelog.RuleFailures is > 0
            ? output.Paint(Count(changelog.RuleFailures.Value), Tone.Warning) + $", last at {Time(changelog.LastRuleFailureAt)} (sync_rule_failures)"
            : "0");
    }

    /// <summary>The verdict's line, its level in the level's colour.</summary>
    public static void WriteVerdict(StatusVerdict verdict, Terminal output)
    {
        var level = verdict.Line[..verdict.Line.IndexOf(' ', StringComparison.Ordinal)];
        var tone = verdict.Level switch
        {
            StatusLevel.Ok => Tone.Good,
            StatusLevel.Critical => Tone.Bad,
            _ => Tone.Warning,
        };
        output.WriteWrapped(output.Paint(level, tone) + " ", verdict.Line[(level.Length + 1)..], indent: 2);
    }

    // What keeps the recreated slot from the same end (docs/operations.md, "Invalidated slots").
    private static string Prevention(string reason) => reason switch
    {
        "wal_removed" => " — it held back more WAL than max_slot_wal_keep_size allows: raise it, or find why the pipeline fell behind",
        "rows_removed" => " — a standby's slot lost catalog rows to the primary's vacuum: set hot_standby_feedback = on and a physical slot (primary_slot_name) for the standby",
        "wal_level_insufficient" => " — the primary's wal_level is below logical: set wal_level = logical there",
        "idle_timeout" => " — unused longer than idle_replication_slot_timeout: raise it (0 turns it off), or keep the pipeline running",
        _ => "",
    };

    private static void Row(Terminal output, string label, string value)
        => output.WriteWrapped($"  {label.PadRight(LabelWidth)} ", value, indent: LabelWidth + 3);

    private static string Client(SlotReport slot)
    {
        var state = slot.ClientState is null ? "" : $", {slot.ClientState}";
        var reply = slot.ClientReplyAt is { } at ? $", last reply {Time(at)}" : "";
        return state + reply;
    }

    private static string Relative(long? aheadOfSlot) => aheadOfSlot switch
    {
        null => "",
        0 => "; the slot has confirmed it",
        > 0 => $"; {Bytes(aheadOfSlot.Value)} past the slot's confirmed_flush_lsn (confirmed at the next status update)",
        // Shown only when the position could not be checked: the pipeline refuses it (it never confirms past what it persisted).
        _ => $"; {Bytes(-aheadOfSlot.Value)} before the slot's confirmed_flush_lsn: the changelog lost committed batches, and `run` refuses it",
    };

    private static string Rows(long? approximate) => approximate is { } rows ? $"about {Count(rows)} rows, " : "";

    private static string Count(long value) => value.ToString("N0", CultureInfo.InvariantCulture);

    private static string Time(DateTimeOffset? at) => at is { } time
        ? time.ToUniversalTime().ToString("yyyy-MM-dd HH:mm:ss'Z'", CultureInfo.InvariantCulture) + $" ({Age(DateTimeOffset.UtcNow - time)})"
        : "-";

    internal static string Age(TimeSpan age) => age switch
    {
        { TotalSeconds: < 1 } => "just now",
        { TotalMinutes: < 2 } => $"{(int)age.TotalSeconds} s ago",
        { TotalHours: < 2 } => $"{(int)age.TotalMinutes} min ago",
        { TotalDays: < 2 } => $"{(int)age.TotalHours} h ago",
        _ => $"{(int)age.TotalDays} days ago",
    };

    private static string Bytes(long bytes) => bytes switch
    {
        < 1024 and > -1024 => $"{bytes} B",
        < 1024 * 1024 and > -1024 * 1024 => string.Create(CultureInfo.InvariantCulture, $"{bytes / 1024.0:0.#} KiB ({Count(bytes)} bytes)"),
        < 1024L * 1024 * 1024 and > -1024L * 1024 * 1024 => string.Create(CultureInfo.InvariantCulture, $"{bytes / (1024.0 * 1024):0.#} MiB ({Count(bytes)} bytes)"),
        _ => string.Create(CultureInfo.InvariantCulture, $"{bytes / (1024.0 * 1024 * 1024):0.##} GiB ({Count(bytes)} bytes)"),
    };
}
