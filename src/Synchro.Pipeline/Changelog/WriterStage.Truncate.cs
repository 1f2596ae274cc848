using Microsoft.Extensions.Logging;
using Npgsql;
using Synchro.Pipeline.Postgres;
using Synchro.Pipeline.Protocol.Messages;
using Synchro.Pipeline.Decoding.Items;

namespace Synchro.Pipeline.Changelog;

internal sealed partial class WriterStage
{
    /// <summary>
    /// A TRUNCATE: every record the edges hold for each truncated table leaves every bucket it is in (a delete row
    /// each) and its edges go. Clients must not keep rows that no longer exist.
    /// </summary>
    /// <remarks>
    /// Exact because of where it runs: the decoder sent the changes before the TRUNCATE in earlier batches, whose edges
    /// are applied in this same database transaction, and the changes after it come in later batches that load the
    /// edges this left. Set-based on the server, so memory does not grow with the table.
    /// </remarks>
    private async Task TruncateAsync(NpgsqlConnection connection, IReadOnlyList<TruncatedTable> tables, TruncateOptions options, CancellationToken cancellationToken)
    {
        var rows = 0L;
        // Its own timeout for the statement that grows with the table, then back to the batch's for the rest of the transaction.
        if (Timeouts is { } timeouts)
            await SessionTimeout.SetLocalAsync(connection, timeouts, StatementKind.Truncate, cancellationToken).ConfigureAwait(false);
        foreach (var (table, partition) in tables)
        {
            // A partition: only the records its constraint takes, told from their ids (the decoder refused partitions it cannot tell).
            rows += await ChangelogStore.TruncateAsync(connection, table.ChangelogName, partition?.Predicate, cancellationToken).ConfigureAwait(false);
        }
        if (Timeouts is { } batch)
            await SessionTimeout.SetLocalAsync(connection, batch, StatementKind.BatchWrite, cancellationToken).ConfigureAwait(false);
        metrics.TablesTruncated(tables.Count, rows);
        LogTruncated(logger, string.Join(", ", tables), Describe(options), rows);
    }

    private static string Describe(TruncateOptions options) => options switch
    {
        TruncateOptions.None => "none",
        TruncateOptions.Cascade => "CASCADE",
        TruncateOptions.RestartIdentity => "RESTART IDENTITY",
        _ when options == (TruncateOptions.Cascade | TruncateOptions.RestartIdentity) => "CASCADE, RESTART IDENTITY",
        _ => options.ToString(),
    };

    [LoggerMessage(EventId = Diagnostics.EventIds.Truncated, Level = LogLevel.Information,
        Message = "TRUNCATE of {Tables} (options: {Options}): {Rows} delete row(s) written to the changelog, one per bucket of each record, and the tables' bucket edges removed")]
    private static partial void LogTruncated(ILogger logger, string tables, string options, long rows);
}
