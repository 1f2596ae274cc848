using Npgsql;
using Synchro.Pipeline.LoadHarness.Backlog;
using Synchro.Pipeline.Protocol;

namespace Synchro.Pipeline.LoadHarness.Contenders;

/// <summary>
/// Our pipeline draining its slot until it has committed the backlog's last transaction: end to end
/// into its own changelog database, or with writing switched off (<see cref="WalPipelineOptions.DiscardWrites"/>).
/// </summary>
internal static class PipelineContender
{
    private static readonly TimeSpan s_pollInterval = TimeSpan.FromMilliseconds(20);

    public static async Task<ContenderResult> RunAsync(ContenderSpec spec, bool discardWrites, CancellationToken ct)
    {
        var stop = Lsn.Parse(spec.StopLsn);
        var options = new WalPipelineOptions
        {
            ConnectionString = spec.SourceConnectionString,
            ChangelogConnectionString = spec.ChangelogConnectionString,
            SlotName = spec.SlotName,
            PublicationName = spec.PublicationName,
            CreateSlotIfMissing = false,
            Tables = BenchSchema.Registry(),
            DiscardWrites = discardWrites,
            BinaryTupleMode = spec.BinaryTuples,
            ReadCoalescing = SocketCompletions.Inline,
        };
        await using var pipeline = new WalPipeline(options);
        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(ct);

        var usage = ProcessUsage.Now();
        var run = pipeline.RunAsync(cancel.Token);
        while (!run.IsCompleted && pipeline.GetStatus().CommittedLsn < stop)
            await Task.WhenAny(run, Task.Delay(s_pollInterval, ct));
        var reachedEnd = pipeline.GetStatus().CommittedLsn >= stop;
        var result = ProcessUsage.Since(usage, new ContenderResult { Name = spec.Name, ReachedEnd = reachedEnd });
        await cancel.CancelAsync();
        await run;
        if (!reachedEnd)
            throw new InvalidOperationException($"the pipeline stopped at {pipeline.GetStatus().CommittedLsn} before {stop}");

        var status = pipeline.GetStatus();
        result = result with { Changes = status.ChangesCommitted };
        if (discardWrites)
            return result;
        await using var changelog = new NpgsqlConnection(spec.ChangelogConnectionString);
        await changelog.OpenAsync(ct);
        return result with
        {
            ChangelogRows = await CountAsync(changelog, "sync_changelog", ct),
            EdgeRows = await CountAsync(changelog, "sync_bucket_edges", ct),
        };
    }

    private static async Task<long> CountAsync(NpgsqlConnection connection, string table, CancellationToken ct)
    {
        // The table name is one of the library's constants, never input.
        await using var command = new NpgsqlCommand($"SELECT count(*) FROM {table}", connection);
        return (long)(await command.ExecuteScalarAsync(ct))!;
    }
}
