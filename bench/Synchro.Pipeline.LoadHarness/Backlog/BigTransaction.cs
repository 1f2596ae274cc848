using Npgsql;

namespace Synchro.Pipeline.LoadHarness.Backlog;

/// <summary>
/// One source transaction inserting <c>rows</c> orders (owned rows: one changelog row and one edge each), behind a
/// slot of its own created just before it: what the pipeline must drain within its memory budget however large.
/// </summary>
internal static class BigTransaction
{
    public const string Slot = "bench_big_transaction";

    /// <returns>The insert position after its commit: the pipeline has drained it once its committed position reaches it.</returns>
    public static async Task<string> GenerateAsync(string connectionString, long rows, CancellationToken ct)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(ct);
        await BacklogGenerator.CreateSlotAsync(connection, Slot, ct);
        await using (var insert = new NpgsqlCommand(
            "INSERT INTO orders (user_id, title) SELECT 'u' || (g % 1000 + 1), 'big transaction order ' || g FROM generate_series(1, $1) g", connection))
        {
            insert.Parameters.AddWithValue(rows);
            insert.CommandTimeout = 0;
            await insert.ExecuteNonQueryAsync(ct);
        }
        var end = await BacklogGenerator.MarkEndAsync(connection, "load-harness big transaction end", ct);
        return end.ToString();
    }
}
