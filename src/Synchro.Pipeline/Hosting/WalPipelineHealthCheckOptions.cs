namespace Synchro.Pipeline.Hosting;

/// <summary>When the hosted pipeline's health check reports it unhealthy for lagging, or for retrying without getting anywhere; read at every check.</summary>
/// <remarks>Configure with <c>services.Configure&lt;WalPipelineHealthCheckOptions&gt;(…)</c>.</remarks>
public sealed class WalPipelineHealthCheckOptions
{
    /// <summary>The health check's registration name.</summary>
    public const string CheckName = "synchro-pipeline";

    /// <summary>The health check's tag, for a health endpoint's predicate.</summary>
    public const string Tag = "synchro";

    internal const string ValidRange = $"{nameof(WalPipelineHealthCheckOptions)}: {nameof(MaxLag)}, {nameof(MaxLagBytes)}, {nameof(MaxRetryDuration)} and {nameof(MaxRetryAttempts)} must be positive when set";

    /// <summary>
    /// Unhealthy when the oldest source transaction waiting for the changelog was committed longer ago than this
    /// (<see cref="Pipeline.WalPipelineStatus.Lag"/>). Default 5 minutes; <see langword="null"/> turns the check off.
    /// </summary>
    public TimeSpan? MaxLag { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>
    /// Unhealthy when the changelog is more than this many bytes of WAL behind the server
    /// (<see cref="Pipeline.WalPipelineStatus.LagBytes"/>). Default 1 GiB; <see langword="null"/> turns the check off.
    /// </summary>
    /// <remarks>The server's WAL includes every database's writes and the changelog's own, so a caught-up pipeline still shows a few status intervals' worth.</remarks>
    public long? MaxLagBytes { get; set; } = 1L << 30;

    /// <summary>
    /// Unhealthy when the pipeline has been failing and retrying — starting, or reconnecting after a lost connection or a
    /// retried failure — for longer than this with nothing committed (<see cref="Pipeline.WalPipelineStatus.RetryingSince"/>);
    /// degraded before. Default 5 minutes; <see langword="null"/> turns the check off.
    /// </summary>
    /// <remarks>A lost connection is retried without limit: this is what tells an orchestrator that retrying is not getting anywhere.</remarks>
    public TimeSpan? MaxRetryDuration { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>
    /// Unhealthy when the pipeline has failed this many attempts in a row with nothing committed
    /// (<see cref="Pipeline.WalPipelineStatus.RetryAttempts"/>) and is still retrying. Default <see langword="null"/>: off.
    /// </summary>
    public int? MaxRetryAttempts { get; set; }

    internal static bool IsValid(WalPipelineHealthCheckOptions options)
        => (options.MaxLag is null || options.MaxLag > TimeSpan.Zero) && (options.MaxLagBytes is null || options.MaxLagBytes > 0)
            && (options.MaxRetryDuration is null || options.MaxRetryDuration > TimeSpan.Zero) && (options.MaxRetryAttempts is null || options.MaxRetryAttempts > 0);
}
