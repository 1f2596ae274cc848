using Synchro.Pipeline.Protocol;

namespace Synchro.Pipeline.Runtime;

/// <summary>
/// The one committed position of a pipeline: the end of the last source transaction (or heartbeat) whose changelog
/// commit is durable, or the persisted position a run resumed from. Read by the metrics, the heartbeats, the
/// stop-time confirm and the reconnect backoff; advanced only by the <see cref="LsnCommitter"/> (and by a run's start).
/// </summary>
/// <remarks>Lives as long as the pipeline, across runs. Lock-free: one <c>long</c> updated with <see cref="Interlocked"/>; it never moves back.</remarks>
internal sealed class CommittedPosition
{
    private long _value;

    public Lsn Value => new((ulong)Volatile.Read(ref _value));

    /// <summary>Moves the position to <paramref name="position"/> if that is further; a lower one is ignored.</summary>
    public void Advance(Lsn position)
    {
        var next = (long)position.Value;
        var current = Volatile.Read(ref _value);
        while (next > current)
        {
            var seen = Interlocked.CompareExchange(ref _value, next, current);
            if (seen == current)
                return;
            current = seen;
        }
    }
}
