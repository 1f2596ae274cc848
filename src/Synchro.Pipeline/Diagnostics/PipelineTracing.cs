using System.Diagnostics;
using System.Reflection;

namespace Synchro.Pipeline.Diagnostics;

/// <summary>The pipeline's spans on the <see cref="PipelineTelemetry.ActivitySourceName"/> activity source: names, tags, and how they start.</summary>
/// <remarks>
/// <para>
/// One trace per batch, never a span per change: <see cref="Decode"/> (the root: from the batch's first change to the
/// decoder handing it on; its context rides in the pooled batch) → <see cref="Write"/> (from the writer taking the batch
/// until it is done with it) → <see cref="Assign"/> and <see cref="Commit"/> (children of the write); <see cref="Confirm"/>
/// is a child of the commit of the newest position it tells the server and links the other commits it covers. The
/// initial snapshot is one <see cref="Snapshot"/> trace with a <see cref="SnapshotChunk"/> per chunk; a replay is a
/// <see cref="Replay"/> span with a <see cref="ReplayChunk"/> per chunk.
/// </para>
/// <para>
/// Invariant: with no listener on the source nothing is allocated — <see cref="Start"/> returns null before anything is
/// made, and tags are set only on a span whose data is requested. A stage's spans never hang under whatever span the code
/// that started the pipeline was in: a batch's trace starts at its decode.
/// </para>
/// </remarks>
internal static class PipelineTracing
{
    public const string Decode = "synchro.pipeline.decode";
    public const string Assign = "synchro.pipeline.assign";
    public const string Write = "synchro.pipeline.write";
    public const string Commit = "synchro.pipeline.commit";
    public const string Confirm = "synchro.pipeline.confirm";
    public const string Snapshot = "synchro.pipeline.snapshot";
    public const string SnapshotChunk = "synchro.pipeline.snapshot.chunk";
    public const string Replay = "synchro.pipeline.replay";
    public const string ReplayChunk = "synchro.pipeline.replay.chunk";

    // Tags. The slot (synchro.slot, Prometheus synchro_slot) is on every span of a pipeline and every measurement of its meter.
    public const string SlotTag = "synchro.slot";
    public const string ChangesTag = "synchro.batch.changes";
    public const string TransactionsTag = "synchro.batch.transactions";
    public const string FirstLsnTag = "synchro.batch.first_lsn";
    public const string EndLsnTag = "synchro.batch.end_lsn";
    public const string EndsTransactionTag = "synchro.batch.ends_transaction";
    public const string RowsTag = "synchro.changelog.rows";
    public const string RuleFailuresTag = "synchro.rule_failures";
    public const string ConfirmedLsnTag = "synchro.confirmed_lsn";
    public const string CommitsTag = "synchro.confirm.commits";
    public const string TableTag = "synchro.table";
    public const string EdgesTag = "synchro.edges";
    public const string RowsReadTag = "synchro.rows";
    public const string FailuresTag = "synchro.replay.failures";
    public const string ReplayedTag = "synchro.replay.replayed";
    public const string StillFailingTag = "synchro.replay.still_failing";

    /// <summary>The library's informational version (the package version, with the commit when built from git), else its assembly version.</summary>
    public static string? Version { get; } = typeof(PipelineTracing).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion
        ?? typeof(PipelineTracing).Assembly.GetName().Version?.ToString();

    public static readonly ActivitySource Source = new(PipelineTelemetry.ActivitySourceName, Version);

    /// <summary>
    /// Starts span <paramref name="name"/> under <paramref name="parent"/>, or as the root of a new trace when it is default
    /// (whatever <see cref="Activity.Current"/> is); null when nobody listens or the sampler drops it. The span becomes
    /// <see cref="Activity.Current"/> of the calling flow until it stops.
    /// </summary>
    public static Activity? Start(string name, ActivityContext parent = default, IEnumerable<ActivityLink>? links = null, DateTimeOffset startTime = default)
    {
        if (!Source.HasListeners())
            return null;
        // A default parent means "Activity.Current" to the source: cleared, so the span starts a trace of its own.
        if (parent == default && Activity.Current is not null)
            Activity.Current = null;
        return Source.StartActivity(name, ActivityKind.Internal, parent, tags: null, links, startTime);
    }

    /// <summary>Starts span <paramref name="name"/> as a child of <see cref="Activity.Current"/> (a root without one); null when nobody listens.</summary>
    public static Activity? StartChild(string name) => Source.HasListeners() ? Source.StartActivity(name, ActivityKind.Internal) : null;

    /// <summary>Marks the span failed with <paramref name="error"/> (status Error, the exception as an event).</summary>
    public static void Failed(this Activity? activity, Exception error)
    {
        if (activity is null)
            return;
        activity.SetStatus(ActivityStatusCode.Error, error.Message);
        activity.AddException(error);
    }

    /// <summary>The span's context, to carry to a later span; default without one.</summary>
    public static ActivityContext ContextOf(Activity? activity) => activity?.Context ?? default;
}
