using System.Diagnostics;
using Npgsql;
using Synchro.Pipeline.LoadHarness.Backlog;
using Synchro.Pipeline.Diagnostics;
using Synchro.Pipeline.Protocol;

namespace Synchro.Pipeline.LoadHarness.Contenders;

/// <summary>
/// Our pipeline draining its slot until it has committed the backlog's last transaction: end to end
/// into its own changelog database or the source's, or with writing switched off (<see cref="WalPipelineOptions.DiscardWrites"/>).
/// </summary>
/// <remarks>
/// The rows written are counted before and after the drain: a changelog in the source database holds the earlier
/// phases' rows too.
/// </remarks>
internal static class PipelineContender
{
    private static readonly TimeSpan s_pollInterval = TimeSpan.FromMilliseconds(20);

    public static async Task<ContenderResult> RunAsync(ContenderSpec spec, bool discardWrites, CancellationToken ct)
    {
        var stop = Lsn.Parse(spec.StopLsn);
        var options = new WalPipelineOptions
        {
            // The pipeline's connections carry the writer's application_name; the row counts below do not.
            ConnectionString = ContenderNames.AsWriter(spec.SourceConnectionString)!,
            ChangelogConnectionString = ContenderNames.AsWriter(spec.ChangelogConnectionString),
            SlotName = spec.SlotName,
            PublicationName = spec.PublicationName,
            CreateSlotIfMissing = false,
            Tables = BenchSchema.Registry(),
            DiscardWrites = discardWrites,
            BinaryTupleMode = spec.BinaryTuples,
            FilterOriginsOnServer = spec.FilterOriginsOnServer,
            ParallelStreaming = spec.ParallelStreaming,
            ReadCoalescing = SocketCompletions.Inline,
        };
        var changelogDatabase = spec.ChangelogConnectionString ?? spec.SourceConnectionString;
        var before = discardWrites ? default : await CountRowsAsync(changelogDatabase, ct);
        using var spans = spec.Traced ? RecordSpans() : null;
        await using var pipeline = new WalPipeline(options);
        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(ct);

        var usage = ProcessUsage.Now();
        var run = pipeline.RunAsync(cancel.Token);
        while (!run.IsCompleted && pipeline.GetStatus().CommittedLsn < stop)
            await Task.WhenAny(run, Task.Delay(s_pollInterval, ct));
        var reachedEnd = pipeline.GetStatus().CommittedLsn >= stop;
        var result = ProcessUsage.Since(usage, new ContenderResult { Name = spec.Name, ReachedEnd = reachedEnd });
        await cancel.CancelAsync();
        try
        {
            await run;
        }
        catch (WalPipelineException e) when (reachedEnd)
        {
            // The drain is complete and measured; the pipeline failed while stopping (the steady state and idle phase
            // tolerate that too). Reported with the result, not as the contender's failure.
            result = result with { StopError = $"{e.Message} ({e.GetBaseException().GetType().Name}: {e.GetBaseException().Message})" };
        }
        if (!reachedEnd)
            throw new InvalidOperationException($"the pipeline stopped at {pipeline.GetStatus().CommittedLsn} before {stop}");

        var status = pipeline.GetStatus();
        result = result with { Changes = status.ChangesCommitted, Batches = discardWrites ? null : status.Batches };
        if (discardWrites)
            return result;
        var after = await CountRowsAsync(changelogDatabase, ct);
        return result with
        {
            ChangelogRows = after.Changelog - before.Changelog,
            EdgeRows = after.Edges - before.Edges,
        };
    }

    /// <summary>Records every span of the pipeline with all its data, as an exporting SDK would ask for it.</summary>
    public static ActivityListener RecordSpans()
    {
        var listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name == PipelineTelemetry.ActivitySourceName,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = _ => Interlocked.Increment(ref s_spans),
        };
        ActivitySource.AddActivityListener(listener);
        return listener;
    }

    private static long s_spans;

    /// <summary>The changelog's and the edges' rows; none before the pipeline created the tables.</summary>
    private static async Task<(long Changelog, long Edges)> CountRowsAsync(string connectionString, CancellationToken ct)
    {
        await using var changelog = new NpgsqlConnection(connectionString);
        await changelog.OpenAsync(ct);
        try
        {
            return (await CountAsync(changelog, "sync_changelog", ct), await CountAsync(changelog, "sync_bucket_edges", ct));
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UndefinedTable)
        {
            return (0, 0);
        }
    }

    private static async Task<long> CountAsync(NpgsqlConnection connection, string table, CancellationToken ct)
    {
        // The table name is one of the library's constants, never input.
        await using var command = new NpgsqlCommand($"SELECT count(*) FROM {table}", connection) { CommandTimeout = 0 };
        return (long)(await command.ExecuteScalarAsync(ct))!;
    }
}
