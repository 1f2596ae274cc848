namespace Synchro.Pipeline;

// One active and waiting instances of the same slot (docs/operations.md, "One active, one waiting instance"). Not to be
// confused with a PostgreSQL standby server (WalPipelineOptions.Standby.cs) or failover standbys (WalPipelineOptions.Failover.cs).
public sealed partial class WalPipelineOptions
{
    /// <summary>
    /// Wait, without a bound, while another pipeline holds the slot lock (or the changelog lock), and take over as soon as it
    /// lets go, instead of failing after <see cref="SlotWaitTimeout"/>. Default false.
    /// </summary>
    /// <remarks>
    /// <para>
    /// For a warm second instance or a rolling update: the waiting instance holds no lock, writes nothing and reports
    /// <see cref="WalPipelineState.WaitingForLock"/> (with <see cref="WalPipelineStatus.LockHolder"/>); it polls the lock every
    /// 0.2 s, so it takes over within moments of the active instance's session ending, then starts as any restart does and
    /// resumes from the persisted position. A killed process's sessions end at once; a vanished host's, when the server's
    /// TCP keepalives give up on them (about 25 s; the pipeline sets them on its lock sessions).
    /// </para>
    /// <para>
    /// Once it holds the slot lock, a walsender still streaming the slot (an old session's, ended by the server after
    /// <c>wal_sender_timeout</c>) is waited for up to <see cref="SlotWaitTimeout"/>, as at any start. An active instance
    /// that loses its slot lock to a waiting one (its lock session was cut) becomes the waiting one, and lets go of its
    /// changelog lock first.
    /// </para>
    /// </remarks>
    public bool WaitForLock { get; set; }
}
