using Microsoft.Extensions.Logging;
using Npgsql;
using Synchro.Pipeline.Protocol.Messages;
using Synchro.Pipeline.Decoding;

namespace Synchro.Pipeline.Changelog;

internal sealed partial class WriterStage
{
    /// <summary>
    /// A TRUNCATE: every record the edges hold for each truncated table leaves every bucket it is in (a delete row
    /// each) and its edges go. Clients must not keep rows that no longer exist.
    /// </summary>
    /// <remarks>
    /// Exact because of where it runs: the decoder cut the changes before the TRUNCATE into earlier batches, whose edges
    /// are applied in this same database transaction, and the changes after it come in later batches that load the
    /// edges this left. Set-based on the server, so memory does not grow with the table.
    /// </remarks>
    private async Task TruncateAsync(NpgsqlConnection connection, ChangeBatch batch, CancellationToken cancellationToken)
    {
        var rows = 0L;
        foreach (var table in batch.TruncatedTables)
            rows += await ChangelogStore.TruncateAsync(connection, table.ChangelogName, cancellationToken).ConfigureAwait(false);
        metrics.TablesTruncated(batch.TruncatedTables.Count, rows);
        LogTruncated(logger, string.Join(", ", batch.TruncatedTables), Describe(batch.TruncateOptions), rows);
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
