using System.Globalization;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;

namespace Synchro.Pipeline.Hosting;

/// <summary>
/// The hosted pipeline's health from <see cref="WalPipeline.GetStatus"/>: the registration's failure status
/// (unhealthy) when it failed, stopped, lags past <see cref="WalPipelineHealthCheckOptions"/> or has been retrying past
/// its bound; degraded while it starts or reconnects within it; healthy while it streams within the limits, and while it
/// waits for another instance to let go of the slot (<see cref="WalPipelineState.WaitingForLock"/>).
/// </summary>
internal sealed class WalPipelineHealthCheck(WalPipeline pipeline, IOptionsMonitor<WalPipelineHealthCheckOptions> options) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(context);
        return Task.FromResult(Evaluate(pipeline.GetStatus(), options.CurrentValue, context.Registration.FailureStatus));
    }

    /// <summary>The health <paramref name="status"/> shows within <paramref name="limits"/>; <paramref name="failed"/> is the registration's failure status.</summary>
    internal static HealthCheckResult Evaluate(WalPipelineStatus status, WalPipelineHealthCheckOptions limits, HealthStatus failed)
    {
        var data = Data(status);
        return status.State switch
        {
            WalPipelineState.Starting or WalPipelineState.Reconnecting when RetryingTooLong(status, limits) is { } why
                => new HealthCheckResult(failed, why + status.Failure?.Message, status.Failure, data),
            WalPipelineState.Starting when status.RetryAttempts > 0 => HealthCheckResult.Degraded(string.Create(CultureInfo.InvariantCulture,
                $"The pipeline could not start yet ({status.RetryAttempts} attempt(s) failed) and keeps trying: {status.Failure?.Message}"), status.Failure, data),
            WalPipelineState.Failed => new HealthCheckResult(failed, "The pipeline stopped on a fatal error: " + status.Failure?.Message, status.Failure, data),
            WalPipelineState.Stopped => new HealthCheckResult(failed, "The pipeline has stopped.", data: data),
            // A passive instance is healthy (WaitForLock): failing it would make an orchestrator restart it, or stall a rolling update that waits for it to be ready.
            WalPipelineState.WaitingForLock => HealthCheckResult.Healthy(
                $"Waiting to take over (WaitForLock): another instance is active and holds {status.LockHolder}; this one holds no lock and writes nothing until it lets go.", data),
            WalPipelineState.NotStarted => HealthCheckResult.Degraded("The pipeline has not started yet.", data: data),
            WalPipelineState.Starting => HealthCheckResult.Degraded("The pipeline is checking the database and connecting.", data: data),
            WalPipelineState.Snapshotting => HealthCheckResult.Degraded(string.Create(CultureInfo.InvariantCulture,
                $"The pipeline is loading the bucket edges of existing rows from its new slot's snapshot ({status.SnapshotRows} rows so far); streaming starts after it."), data: data),
            WalPipelineState.Reconnecting => HealthCheckResult.Degraded(string.Create(CultureInfo.InvariantCulture,
                $"The pipeline is reconnecting after a lost connection or a retried failure ({status.RetryAttempts} attempt(s) in a row): {status.Failure?.Message}"), status.Failure, data),
            _ when status.Lag > limits.MaxLag => new HealthCheckResult(failed, string.Create(CultureInfo.InvariantCulture,
                $"The changelog lags {status.Lag.TotalSeconds:0.#} s behind the source's commits (limit {limits.MaxLag.Value.TotalSeconds:0.#} s)."), data: data),
            _ when status.LagBytes > limits.MaxLagBytes => new HealthCheckResult(failed, string.Create(CultureInfo.InvariantCulture,
                $"The changelog is {status.LagBytes} bytes of WAL behind the server (limit {limits.MaxLagBytes.Value})."), data: data),
            _ => HealthCheckResult.Healthy("The pipeline is streaming.", data),
        };
    }

    /// <summary>Why retrying has gone on past the limits, as the start of the result's description; null within them.</summary>
    private static string? RetryingTooLong(WalPipelineStatus status, WalPipelineHealthCheckOptions limits)
    {
        if (status.RetryAttempts == 0 || status.RetryingSince is not { } since)
            return null;
        var retrying = DateTimeOffset.UtcNow - since;
        var doing = status.State == WalPipelineState.Starting ? "trying to start" : "reconnecting";
        if (limits.MaxRetryDuration is { } duration && retrying > duration)
        {
            return string.Create(CultureInfo.InvariantCulture,
                $"The pipeline has been {doing} for {retrying.TotalSeconds:0} s ({status.RetryAttempts} failed attempt(s), limit {duration.TotalSeconds:0.#} s) with nothing committed: ");
        }
        if (limits.MaxRetryAttempts is { } attempts && status.RetryAttempts >= attempts)
        {
            return string.Create(CultureInfo.InvariantCulture,
                $"The pipeline has been {doing} through {status.RetryAttempts} failed attempts (limit {attempts}) with nothing committed: ");
        }
        return null;
    }

    private static Dictionary<string, object> Data(WalPipelineStatus status) => new()
    {
        ["state"] = status.State.ToString(),
        ["committed_lsn"] = status.CommittedLsn.ToString(),
        ["server_wal_end"] = status.ServerWalEnd.ToString(),
        ["lag_bytes"] = status.LagBytes,
        ["lag_seconds"] = status.Lag.TotalSeconds,
        ["changes_committed"] = status.ChangesCommitted,
        ["changelog_rows"] = status.ChangelogRows,
        ["rule_failures"] = status.RuleFailures,
        ["reconnects"] = status.Reconnects,
        ["retry_attempts"] = status.RetryAttempts,
        ["retrying_since"] = status.RetryingSince?.ToString("O", CultureInfo.InvariantCulture) ?? "",
        ["lock_holder"] = status.LockHolder ?? "",
    };
}
