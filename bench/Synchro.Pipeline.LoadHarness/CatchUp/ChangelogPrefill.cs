using System.Globalization;
using Npgsql;
using Synchro.Pipeline.Changelog;
using Synchro.Pipeline.LoadHarness.Backlog;

namespace Synchro.Pipeline.LoadHarness.CatchUp;

/// <summary>What <see cref="ChangelogPrefill"/> wrote: the orders (and as many lines) the history is of, its changelog rows and edges.</summary>
internal sealed record PrefillInfo(long Orders, long ChangelogRows, long Edges, double Seconds);

/// <summary>
/// A history written before the backlog (<see cref="HarnessOptions.PrefillChangelog"/>): the source gets orders and lines
/// up to id H, the changelog (migrated with <see cref="ChangelogSchema.EnsureAsync"/>) three rows per order (the order
/// inserted, its line inserted, the order updated) and each record's edge, in id order as a pipeline would have written
/// them; then VACUUM (ANALYZE) and a CHECKPOINT, so the drain writes into existing index pages, each logging a full-page
/// image at its first change after a checkpoint when <c>full_page_writes</c> is on.
/// </summary>
/// <remarks>
/// Order g is owned by <c>'u' || (g % 1000 + 1)</c> and line g belongs to order g, the seed's rule
/// (<see cref="BenchSchema"/>), so the edges are the real edges of the source's rows and the backlog's updates of its
/// newest thousand orders find theirs. Written before the backlog's slots exist: none of it is in the drain's WAL.
/// </remarks>
internal static class ChangelogPrefill
{
    private const int RowsPerOrder = 3;

    public static async Task<PrefillInfo> FillAsync(string source, string changelog, long changelogRows, CancellationToken ct)
    {
        var started = DateTime.UtcNow;
        var orders = Math.Max(BenchSchema.SeedOrders, (changelogRows + RowsPerOrder - 1) / RowsPerOrder);
        await using (var connection = new NpgsqlConnection(source))
        {
            await connection.OpenAsync(ct);
            await ExecuteAsync(connection, $"""
                INSERT INTO orders (id, user_id, title) SELECT g, 'u' || (g % 1000 + 1), 'order ' || g FROM generate_series({BenchSchema.SeedOrders + 1}, {orders}) g;
                INSERT INTO order_lines (id, order_id, product) SELECT g, g, 'product ' || g FROM generate_series({BenchSchema.SeedOrders + 1}, {orders}) g;
                SELECT setval('orders_id_seq', {orders});
                SELECT setval('order_lines_id_seq', {orders});
                """, ct);
            await ExecuteAsync(connection, "VACUUM (ANALYZE) orders, order_lines", ct);
        }
        await using (var connection = new NpgsqlConnection(changelog))
        {
            await connection.OpenAsync(ct);
            await ChangelogSchema.EnsureAsync(connection, ct);
            await ExecuteAsync(connection, $"""
                INSERT INTO sync_changelog (bucket_id, table_name, record_id, operation)
                SELECT 'user:u' || (g % 1000 + 1), t.table_name, g::text, t.operation
                FROM generate_series(1, {orders}) g CROSS JOIN (VALUES (1, 'orders', 1), (2, 'order_lines', 1), (3, 'orders', 2)) t(k, table_name, operation)
                ORDER BY g, t.k;
                INSERT INTO sync_bucket_edges (table_name, record_id, bucket_id)
                SELECT t.table_name, g::text, 'user:u' || (g % 1000 + 1)
                FROM generate_series(1, {orders}) g CROSS JOIN (VALUES (1, 'orders'), (2, 'order_lines')) t(k, table_name)
                ORDER BY g, t.k;
                """, ct);
            await ExecuteAsync(connection, "VACUUM (ANALYZE) sync_changelog, sync_bucket_edges", ct);
            await ExecuteAsync(connection, "CHECKPOINT", ct);
        }
        return new PrefillInfo(orders, orders * RowsPerOrder, orders * 2, (DateTime.UtcNow - started).TotalSeconds);
    }

    private static async Task ExecuteAsync(NpgsqlConnection connection, string sql, CancellationToken ct)
    {
        await using var command = new NpgsqlCommand(sql, connection) { CommandTimeout = 0 };
        await command.ExecuteNonQueryAsync(ct);
    }

    public static string Describe(PrefillInfo prefill)
        => string.Create(CultureInfo.InvariantCulture,
            $"prefilled {prefill.ChangelogRows:N0} changelog rows and {prefill.Edges:N0} edges of {prefill.Orders:N0} orders and lines in {prefill.Seconds:F0} s");
}
