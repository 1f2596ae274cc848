namespace Synchro.Pipeline.Replication;

/// <summary>What the start-up checks found short of an error.</summary>
/// <param name="Warnings">Problems the pipeline can run with (e.g. a registered table the publication leaves out), each with its fix.</param>
/// <param name="SlotExists">Whether the replication slot exists; when it does not, the pipeline may create it.</param>
/// <param name="Standby">The source is a hot standby: its primary, if known; null for a primary.</param>
internal sealed record StartupCheckResult(IReadOnlyList<string> Warnings, bool SlotExists, StandbySource? Standby = null);
