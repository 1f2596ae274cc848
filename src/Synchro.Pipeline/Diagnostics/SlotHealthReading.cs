namespace Synchro.Pipeline.Diagnostics;

/// <summary>The slot as one health check read it from <c>pg_replication_slots</c>; the last four are null before PostgreSQL 17.</summary>
/// <param name="WalStatus"><c>reserved</c>, <c>extended</c>, <c>unreserved</c> or <c>lost</c>.</param>
/// <param name="SafeWalSize">WAL the server may still write before the slot is in danger; null without <c>max_slot_wal_keep_size</c>.</param>
/// <param name="InvalidationReason">Why the server invalidated the slot; null while it is valid.</param>
/// <param name="InactiveSince">Since when no consumer uses the slot; null while one does.</param>
/// <param name="Failover">Whether the slot is a failover slot (synchronised to standbys with <c>sync_replication_slots</c>).</param>
/// <param name="Synced">Whether the slot is a standby's copy of a primary's failover slot.</param>
internal sealed record SlotHealthReading(string? WalStatus, long? SafeWalSize, string? InvalidationReason, DateTimeOffset? InactiveSince, bool? Failover, bool? Synced);
