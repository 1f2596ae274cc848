using Npgsql;

namespace Synchro.Pipeline.Changelog;

// A part of a batch is written under a savepoint, so a change the server refuses can be isolated (WriterStage.Isolation).
// The savepoint is set through NpgsqlTransaction.Save, which sends it with the next command instead of on its own; it is
// released and rolled back to with plain commands, not NpgsqlTransaction.ReleaseAsync/RollbackAsync(name): with Npgsql
// 10.0.3 those read their response synchronously, and where socket completions run inline (ReadCoalescing) that read
// blocked the socket thread it waited for (the demo's writer hung after its second batch).
internal static partial class ChangelogStore
{
    /// <summary>The savepoint a part is written under; parts are written one at a time, so one name serves.</summary>
    public const string PartSavepoint = "synchro_part";

    private const string ReleasePartSql = "RELEASE SAVEPOINT " + PartSavepoint;
    private const string RollBackPartSql = "ROLLBACK TO SAVEPOINT " + PartSavepoint;

    /// <summary>Sets the part's savepoint; no round trip: it goes to the server with the next command.</summary>
    public static void StartPart(NpgsqlTransaction transaction) => transaction.Save(PartSavepoint);

    /// <summary>Keeps what the part wrote (releases its savepoint).</summary>
    public static Task EndPartAsync(NpgsqlConnection connection, CancellationToken ct) => ExecuteAsync(connection, ReleasePartSql, ct);

    /// <summary>Undoes what the part wrote and drops its savepoint, in one round trip.</summary>
    public static async Task UndoPartAsync(NpgsqlConnection connection, CancellationToken ct)
    {
        var batch = new NpgsqlBatch(connection) { BatchCommands = { new NpgsqlBatchCommand(RollBackPartSql), new NpgsqlBatchCommand(ReleasePartSql) } };
        await using (batch.ConfigureAwait(false))
            await batch.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
    }
}
