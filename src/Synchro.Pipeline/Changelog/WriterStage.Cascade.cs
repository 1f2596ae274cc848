using System.Diagnostics;
using Microsoft.Extensions.Logging;
using Npgsql;
using Synchro.Pipeline.Diagnostics;

namespace Synchro.Pipeline.Changelog;

/// <summary>Parent moves cascading to the descendants that inherit their buckets (<see cref="ParentMoveCascade"/>).</summary>
internal sealed partial class WriterStage
{
    /// <summary>Moves descendants with their parents (<c>WalPipelineOptions.CascadeParentMoves</c>); null keeps the reference's behaviour.</summary>
    public ParentMoveCascade? Cascade { get; init; }

    // The records of the batch's tables with inheriting children whose edges the batch changed.
    private readonly HashSet<RecordKey> _moved = [];
    // Those of them the batch inserted: a new row's children come in their own changes, so it moves none (no round trip).
    private readonly HashSet<RecordKey> _inserted = [];

    private void NoteInsert(RecordKey record)
    {
        if (Cascade is { IsNeeded: true } cascade && cascade.HasChildren(record.TableName))
            _inserted.Add(record);
    }

    /// <summary>Notes the records of the part's net edge changes whose tables have inheriting children (no round trip).</summary>
    private void NoteMoves()
    {
        if (Cascade is not { IsNeeded: true } cascade)
            return;
        foreach (var (record, _) in _added)
        {
            if (cascade.HasChildren(record.TableName))
                _moved.Add(record);
        }
        foreach (var (record, _) in _removed)
        {
            if (cascade.HasChildren(record.TableName))
                _moved.Add(record);
        }
    }

    /// <summary>
    /// After the batch's rows: moves the descendants of the records it moved to their buckets now, in the same
    /// changelog transaction. Invariant: <see cref="_overlay"/> holds the edges the written parts left.
    /// </summary>
    private async Task CascadeMovesAsync(NpgsqlConnection connection, NpgsqlConnection sourceConnection, CancellationToken cancellationToken)
    {
        var started = Stopwatch.GetTimestamp();
        var moved = new List<(RecordKey, IReadOnlyList<string>)>(_moved.Count);
        foreach (var record in _moved)
        {
            if (!_inserted.Contains(record))
                moved.Add((record, _overlay.Current(record)));
        }
        _moved.Clear();
        _inserted.Clear();
        if (moved.Count == 0)
            return;
        var result = await Cascade!.CascadeAsync(connection, sourceConnection, _sourceTimeout, moved, cancellationToken).ConfigureAwait(false);
        RowsWritten(result.Rows, 0);
        LogCascade(logger, moved.Count, result.Descendants, result.Rows, result.Queries, Stopwatch.GetElapsedTime(started).TotalMilliseconds);
    }

    [LoggerMessage(EventId = EventIds.ParentMovesCascaded, Level = LogLevel.Debug,
        Message = "{Parents} moved record(s) with children: {Descendants} descendant(s) read in {Queries} fetch(es), {Rows} changelog row(s) written for their moves ({Milliseconds:F0} ms).")]
    private static partial void LogCascade(ILogger logger, int parents, int descendants, int rows, int queries, double milliseconds);
}
