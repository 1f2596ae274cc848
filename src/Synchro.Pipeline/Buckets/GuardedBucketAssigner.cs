using Npgsql;
using Synchro.Pipeline.Registry;
using Synchro.Pipeline.Postgres;

namespace Synchro.Pipeline.Buckets;

/// <summary>
/// The pipeline's whole bucket rule: the SQL function rules first (a table's own function, then the global one), then the
/// application's assigner or the default one (owner/bucket-by column, parent chain) — and the two guards every rule gets.
/// </summary>
/// <remarks>
/// Guards: an assigner that throws (anything but a lost connection, cancellation, a statement timeout or a conflict with
/// another session, which the pipeline retries) fails the
/// changes it left undecided, each becoming a rule failure with the exception's message while the pipeline goes on; and a
/// change given more than <c>maxBucketsPerChange</c> distinct buckets is rejected as a rule failure naming the count and the limit.
/// </remarks>
internal sealed class GuardedBucketAssigner : IBucketAssigner
{
    private readonly IBucketAssigner[] _assigners;
    private readonly TableRegistry _registry;
    private readonly int _maxBucketsPerChange;

    public GuardedBucketAssigner(TableRegistry registry, IBucketAssigner? assigner, int maxBucketsPerChange)
    {
        _registry = registry;
        var inner = assigner ?? new DefaultBucketAssigner();
        _assigners = SqlFunctionBucketAssigner.IsNeeded(registry) ? [new SqlFunctionBucketAssigner(registry, maxBucketsPerChange), inner] : [inner];
        _maxBucketsPerChange = maxBucketsPerChange;
    }

    /// <inheritdoc/>
    public async Task AssignAsync(BucketAssignmentBatch batch, CancellationToken cancellationToken)
    {
        foreach (var assigner in _assigners)
        {
            try
            {
                // The built-in rules set their statements' timeouts; an application's assigner runs under the rule query's.
                if (batch.SourceTimeout is { } session && assigner is not SqlFunctionBucketAssigner)
                    await session.UseAsync(assigner is DefaultBucketAssigner ? StatementKind.ParentLookup : StatementKind.RuleQuery, cancellationToken).ConfigureAwait(false);
                await assigner.AssignAsync(batch, cancellationToken).ConfigureAwait(false);
            }
            catch (PostgresException e) when (batch.SourceTimeout?.AsTimeout(e, $"Bucket assigner {assigner.GetType().Name}") is { } timeout)
            {
                throw timeout;
            }
            catch (Exception e) when (!IsRetried(e, cancellationToken))
            {
                var reason = $"bucket assigner {assigner.GetType().Name} threw {e.GetType().Name}: {e.Message}";
                foreach (var change in batch.Changes)
                {
                    // The function rules answer only for their tables; the changes of the others are still the next assigner's.
                    if (!change.IsDecided && (assigner is not SqlFunctionBucketAssigner || _registry.BucketFunctionOf(change.Table) is not null))
                        change.Fail(reason);
                }
            }
        }
        if (_maxBucketsPerChange > 0)
        {
            foreach (var change in batch.Changes)
                LimitFanOut(change, _maxBucketsPerChange);
        }
    }

    /// <summary>Rejects a change whose distinct, non-empty bucket ids outnumber <paramref name="limit"/>.</summary>
    internal static void LimitFanOut(BucketAssignment change, int limit)
    {
        if (change.Failure is not null || change.Buckets.Count <= limit)
            return;
        var distinct = change.Buckets.Where(b => !string.IsNullOrEmpty(b)).Distinct(StringComparer.Ordinal).Count();
        if (distinct > limit)
            change.Fail(FanOutReason(distinct, limit));
    }

    /// <summary>The failure of a change given <paramref name="buckets"/> buckets, more than <paramref name="limit"/>.</summary>
    internal static string FanOutReason(int buckets, int limit) =>
        $"bucket fan-out {buckets} exceeds the limit of {limit} buckets per change (MaxBucketsPerChange)";

    /// <summary>
    /// Errors the pipeline retries or stops on rather than recording: a lost connection, a shutdown, our own cancellation, a
    /// statement timeout, a deadlock, a serialization failure, a lock not available, another session's cancel.
    /// </summary>
    internal static bool IsRetried(Exception error, CancellationToken cancellationToken) =>
        (error is OperationCanceledException && cancellationToken.IsCancellationRequested)
        || error is WalPipelineException or StatementTimeoutException
        || PostgresErrors.IsConnectionLoss(error)
        || PostgresErrors.IsTransientConflict(error);
}
