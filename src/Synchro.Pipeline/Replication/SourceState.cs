using Synchro.Pipeline.Protocol;

namespace Synchro.Pipeline.Replication;

/// <summary>The source as a run finds it before streaming: who it is, how far its WAL goes, and how far its slot was confirmed.</summary>
/// <param name="Identity">The cluster, timeline and database.</param>
/// <param name="WalEnd">
/// The last WAL position the server has flushed (on a standby: received or replayed), from <c>IDENTIFY_SYSTEM</c>: a
/// walsender never sends anything past it, so no position this source gave the pipeline lies beyond it.
/// </param>
/// <param name="SlotConfirmed">The slot's <c>confirmed_flush_lsn</c>, read before everything else; null when the slot does not exist.</param>
internal sealed record SourceState(SourceIdentity Identity, Lsn WalEnd, Lsn? SlotConfirmed);
