using System.Diagnostics;
using Synchro.Pipeline.Protocol;

namespace Synchro.Pipeline.Changelog;

/// <summary>What the writer hands the committer for each changelog commit: the position it persisted, and the commit's span.</summary>
/// <param name="Position">The position committed with the changelog rows it covers (invariant 1 of docs/architecture.md).</param>
/// <param name="Trace">The context of the commit's span, which the committer's confirm span hangs under or links; default when it was not traced.</param>
internal readonly record struct CommitReceipt(Lsn Position, ActivityContext Trace);
