using System.Globalization;
using System.Text.Json.Serialization;
using Synchro.Pipeline.Hosting;

namespace Synchro.Pipeline.Cli.Status;

/// <summary>How the slot and the changelog are doing, worst last.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<StatusLevel>))]
internal enum StatusLevel
{
    /// <summary>A consumer streams and nothing needs attention.</summary>
    [JsonStringEnumMemberName("ok")]
    Ok,

    /// <summary>A consumer streams, but something needs attention (rule failures, WAL at risk, lag past the health check's limit).</summary>
    [JsonStringEnumMemberName("warning")]
    Warning,

    /// <summary>Nothing consumes the slot, or it does not exist yet; the slot (if any) retains WAL meanwhile.</summary>
    [JsonStringEnumMemberName("stopped")]
    Stopped,

    /// <summary>Changes were or will be lost, or <c>run</c> refuses to start: an invalidated or dropped slot, a refused position.</summary>
    [JsonStringEnumMemberName("critical")]
    Critical,
}

/// <summary>
/// The first line of <c>status</c> (<c>OK — streaming, 12 ms behind, slot retains 3.1 MiB</c>) and the exit code, both
/// derived here from the same facts so they cannot disagree: a non-zero exit code is never OK or WARNING.
/// </summary>
internal sealed class StatusVerdict
{
    private StatusVerdict(StatusLevel level, string summary, int exitCode)
    {
        Level = level;
        Line = $"{level.ToString().ToUpperInvariant()} — {summary}";
        ExitCode = exitCode;
    }

    public StatusLevel Level { get; }

    /// <summary>The verdict as printed: the level in capitals, a dash, what it rests on.</summary>
    public string Line { get; }

    /// <summary>The exit code of <c>status</c> (<see cref="ExitCodes"/>).</summary>
    [JsonIgnore]
    public int ExitCode { get; }

    public static StatusVerdict Of(string slotName, SlotReport slot, ChangelogReport changelog, DateTimeOffset now)
    {
        if (changelog.PositionProblems.Count > 0)
            return new(StatusLevel.Critical, $"persisted position {changelog.PersistedLsn} refused: `run` will not start from it; the position error says how to recover", ExitCodes.Configuration);
        if (!slot.Exists)
        {
            return changelog.PersistedLsn is { } persisted
                ? new(StatusLevel.Critical, $"slot {slotName} does not exist, but the changelog has a position for it ({persisted}): it was dropped and the changes since are lost; `run` recreates it, then resync clients", ExitCodes.SlotMissing)
                : new(StatusLevel.Stopped, $"slot {slotName} does not exist; `run` creates it (the changelog starts from then)", ExitCodes.SlotMissing);
        }
        if (slot.InvalidationReason is not null || slot.WalStatus == "lost")
            return new(StatusLevel.Critical, $"slot invalidated ({slot.InvalidationReason ?? "wal_status lost"}): the changes since {slot.ConfirmedFlushLsn ?? "its last confirmed position"} are lost; drop it, let `run` recreate it, then resync clients", ExitCodes.Replication);

        var warnings = Warnings(slot, changelog);
        var retains = slot.RetainedWalBytes is { } retained ? $"slot retains {Bytes(retained)}" : "slot retains no WAL";
        if (slot.Active != true)
        {
            var who = slot.InactiveSince is { } inactive ? $"slot inactive since {Time(inactive, now)}" : "no consumer connected to the slot";
            var stopped = slot.RetainedWalBytes is { } bytes ? $"{who}, it retains {Bytes(bytes)} of WAL" : who;
            return new(StatusLevel.Stopped, string.Join("; ", warnings.Prepend(stopped)), ExitCodes.Ok);
        }
        var state = slot.ClientState switch
        {
            "streaming" => "streaming",
            "catchup" => "catching up",
            "startup" => "starting",
            null => "a consumer is connected",
            var other => other,
        };
        var running = $"{state}, {Behind(slot)}, {retains}";
        return warnings.Count > 0
            ? new(StatusLevel.Warning, string.Join("; ", warnings.Append(running)), ExitCodes.Ok)
            : new(StatusLevel.Ok, running, ExitCodes.Ok);
    }

    private static List<string> Warnings(SlotReport slot, ChangelogReport changelog)
    {
        var warnings = new List<string>();
        if (slot.WalStatus == "unreserved")
            warnings.Add("wal_status unreserved: the next checkpoint may invalidate the slot");
        else if (slot.SafeWalSize is { } safe && safe < slot.SafeWalSizeWarning)
            warnings.Add($"only {Bytes(safe)} of WAL until max_slot_wal_keep_size invalidates the slot");
        else if (slot.WalStatus == "extended")
            warnings.Add("the slot retains more than max_wal_size (wal_status extended)");

        // The health check's default limits: past them an orchestrator would see the pipeline as unhealthy.
        var limits = new WalPipelineHealthCheckOptions();
        if (slot.ClientFlushLagSeconds is { } seconds && limits.MaxLag is { } maxLag && seconds > maxLag.TotalSeconds)
            warnings.Add($"{Duration(seconds)} behind, past the health check's {Duration(maxLag.TotalSeconds)}");
        else if (slot.LagBytes is { } lag && limits.MaxLagBytes is { } maxBytes && lag > maxBytes)
            warnings.Add($"{Bytes(lag)} of WAL behind, past the health check's {Bytes(maxBytes)}");

        if (!changelog.TablesExist)
            warnings.Add($"changelog tables missing ({string.Join(", ", changelog.MissingTables)}); `migrate` or `run` creates them");
        else if (changelog.PositionUnchecked is not null && changelog.PersistedAheadOfSlotBytes < 0)
            warnings.Add("persisted position before the slot's confirmed_flush_lsn: `run` refuses it");
        if (changelog.RuleFailures is > 0 and var failures)
            warnings.Add($"{failures.ToString("N0", CultureInfo.InvariantCulture)} rule failure{(failures == 1 ? "" : "s")} in sync_rule_failures (`replay-failures`)");
        return warnings;
    }

    private static string Behind(SlotReport slot) => (slot.ClientFlushLagSeconds, slot.LagBytes) switch
    {
        ({ } seconds, { } bytes) => $"{Duration(seconds)} behind ({Bytes(bytes)} of WAL)",
        ({ } seconds, null) => $"{Duration(seconds)} behind",
        (null, { } bytes) => $"{Bytes(bytes)} of WAL behind",
        _ => "lag unknown",
    };

    private static string Duration(double seconds) => seconds switch
    {
        < 1 => string.Create(CultureInfo.InvariantCulture, $"{seconds * 1000:0} ms"),
        < 120 => string.Create(CultureInfo.InvariantCulture, $"{seconds:0.#} s"),
        < 7200 => string.Create(CultureInfo.InvariantCulture, $"{seconds / 60:0} min"),
        _ => string.Create(CultureInfo.InvariantCulture, $"{seconds / 3600:0.#} h"),
    };

    private static string Time(DateTimeOffset at, DateTimeOffset now)
        => at.ToUniversalTime().ToString("yyyy-MM-dd HH:mm:ss'Z'", CultureInfo.InvariantCulture) + $" ({StatusView.Age(now - at)})";

    private static string Bytes(long bytes) => Math.Abs(bytes) switch
    {
        < 1024 => $"{bytes} B",
        < 1024 * 1024 => string.Create(CultureInfo.InvariantCulture, $"{bytes / 1024.0:0.#} KiB"),
        < 1024L * 1024 * 1024 => string.Create(CultureInfo.InvariantCulture, $"{bytes / (1024.0 * 1024):0.#} MiB"),
        _ => string.Create(CultureInfo.InvariantCulture, $"{bytes / (1024.0 * 1024 * 1024):0.##} GiB"),
    };
}
