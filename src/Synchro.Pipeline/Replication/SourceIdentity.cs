namespace Synchro.Pipeline.Replication;

/// <summary>
/// What a replication position belongs to (invariant 8 of docs/architecture.md): the cluster, the timeline its server
/// was on, and the database. An LSN is an offset into one cluster's WAL history and means nothing in another's.
/// </summary>
/// <param name="SystemId">The cluster's system identifier (<c>IDENTIFY_SYSTEM</c>, <c>pg_control_system()</c>), the same on its standbys and copies.</param>
/// <param name="Timeline">The server's timeline: it changes when a standby is promoted, and the new one forks from its parent at a known LSN.</param>
/// <param name="DatabaseOid">The database's OID: a database dropped and created again under the same name has another.</param>
/// <param name="Database">The database's name, for messages.</param>
internal sealed record SourceIdentity(ulong SystemId, uint Timeline, uint DatabaseOid, string Database);
