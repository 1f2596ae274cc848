namespace Synchro.Pipeline;

/// <summary>Where a <see cref="WalPipeline"/> is in its life.</summary>
public enum WalPipelineState
{
    /// <summary><see cref="WalPipeline.RunAsync"/> has not been called.</summary>
    NotStarted,

    /// <summary>
    /// Checking the database, migrating the sidecar tables, creating the slot, connecting; after a failed attempt, waiting for
    /// the next (<see cref="WalPipelineStatus.Failure"/>, <see cref="WalPipelineStatus.RetryAttempts"/>).
    /// </summary>
    Starting,

    /// <summary>Streaming from the slot.</summary>
    Running,

    /// <summary>The connection was lost, or a statement failed in a way a retry may cure; waiting to reconnect from the persisted position.</summary>
    Reconnecting,

    /// <summary>Stopped cleanly on cancellation.</summary>
    Stopped,

    /// <summary>Stopped on a fatal error (<see cref="WalPipelineStatus.Failure"/>).</summary>
    Failed,

    /// <summary>Loading the bucket edges of existing rows from the new slot's snapshot (<see cref="WalPipelineOptions.InitialSnapshot"/>; progress in <see cref="WalPipelineStatus.SnapshotRows"/>).</summary>
    Snapshotting,

    /// <summary>
    /// Waiting for another instance to let go of the slot lock (or the changelog lock), with <see cref="WalPipelineOptions.WaitForLock"/>:
    /// a passive instance, ready to take over, that holds no lock and writes nothing (<see cref="WalPipelineStatus.LockHolder"/> names the holder).
    /// </summary>
    WaitingForLock,
}
