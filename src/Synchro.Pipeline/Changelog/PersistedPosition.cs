using Synchro.Pipeline.Protocol;
using Synchro.Pipeline.Replication;

namespace Synchro.Pipeline.Changelog;

/// <summary>A slot's row of <c>sync_wal_position</c>: the position, and the source it was read from once bound.</summary>
/// <param name="Position">The end of the last source transaction (or heartbeat) in the changelog; <see cref="Lsn.Invalid"/> is the initial snapshot's pending marker.</param>
/// <param name="Source">
/// The source the position was saved from; null while the row is not yet bound (written by an older version, or by the
/// Go reference): such a row is checked against the server's WAL and the slot only, and bound at its next save.
/// </param>
internal sealed record PersistedPosition(Lsn Position, SourceIdentity? Source);
