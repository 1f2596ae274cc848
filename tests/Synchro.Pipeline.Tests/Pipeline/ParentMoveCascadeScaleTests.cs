using System.Diagnostics;
using Npgsql;
using Synchro.Pipeline.Registry;
using Synchro.Pipeline.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Synchro.Pipeline.Tests.Pipeline;

/// <summary>
/// Issue 20 item 2: a move of a parent with 100,000 descendants over three levels, written in chunks inside one changelog
/// transaction; prints the time and the pipeline process's managed memory for the report.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class ParentMoveCascadeScaleTests(PostgresServerFixture postgres, ITestOutputHelper output)
{
    private const int Lines = 1_000;
    private const int NotesPerLine = 99;

    [Fact]
    public async Task An_order_with_100000_descendants_moves_them_all_in_one_commit_in_bounded_memory()
    {
        await using var harness = await PipelineHarness.CreateAsync(postgres, "cascade_scale");
        // Loaded before the start: the initial snapshot gives every record its alice edge.
        await harness.ExecuteAsync($"""
            CREATE TABLE line_notes (id int PRIMARY KEY, line_id int NOT NULL REFERENCES order_lines (id), body text);
            CREATE INDEX ON line_notes (line_id);
            CREATE INDEX ON order_lines (order_id);
            ALTER PUBLICATION synchro_pub ADD TABLE line_notes;
            INSERT INTO orders (id, user_id) VALUES ('00000000-0000-0000-0000-000000000001', 'alice');
            INSERT INTO order_lines SELECT l, '00000000-0000-0000-0000-000000000001', 1 FROM generate_series(1, {Lines}) l;
            INSERT INTO line_notes SELECT l * 1000 + n, l, 'note' FROM generate_series(1, {Lines}) l, generate_series(1, {NotesPerLine}) n;
            ANALYZE order_lines; ANALYZE line_notes;
            """);
        var options = harness.Options();
        options.Tables = PipelineHarness.Registry()
            .Add(new TableRegistration("line_notes") { ParentTable = "order_lines", ParentForeignKeyColumn = "line_id", SoftDeleteColumn = null });
        await harness.StartAsync(options);
        Assert.Equal(1 + Lines + (Lines * NotesPerLine), await CountAsync(harness, "SELECT count(*) FROM sync_bucket_edges WHERE bucket_id = 'user:alice'"));

        GC.Collect();
        var heapBefore = GC.GetTotalMemory(forceFullCollection: true);
        var allocatedBefore = GC.GetTotalAllocatedBytes(precise: true);
        long peakHeap = 0;
        using var sampling = new CancellationTokenSource();
        var sampler = Task.Run(async () =>
        {
            while (!sampling.IsCancellationRequested)
            {
                peakHeap = Math.Max(peakHeap, GC.GetTotalMemory(forceFullCollection: false));
                await Task.Delay(5, CancellationToken.None);
            }
        });
        var started = Stopwatch.GetTimestamp();
        await harness.ExecuteAsync("UPDATE orders SET user_id = 'bob'");
        await harness.WaitUntilCaughtUpAsync();
        var elapsed = Stopwatch.GetElapsedTime(started);
        await sampling.CancelAsync();
        await sampler;
        var allocated = GC.GetTotalAllocatedBytes(precise: true) - allocatedBefore;

        const int Descendants = Lines + (Lines * NotesPerLine);
        Assert.Equal(Descendants + 1, await CountAsync(harness, "SELECT count(*) FROM sync_bucket_edges WHERE bucket_id = 'user:bob'"));
        Assert.Equal(0, await CountAsync(harness, "SELECT count(*) FROM sync_bucket_edges WHERE bucket_id = 'user:alice'"));
        Assert.Equal(2 * (Descendants + 1), await CountAsync(harness, "SELECT count(*) FROM sync_changelog"));
        Assert.Equal(Descendants + 1, await CountAsync(harness, "SELECT count(*) FROM sync_changelog WHERE bucket_id = 'user:bob' AND operation = 1"));

        output.WriteLine($"moved 1 order with {Descendants:N0} descendants (3 levels): {elapsed.TotalSeconds:F2} s until caught up, "
            + $"{Descendants / elapsed.TotalSeconds:N0} descendants/s; managed heap before {heapBefore / 1048576.0:F1} MB, peak {peakHeap / 1048576.0:F1} MB; "
            + $"allocated {allocated / 1048576.0:F1} MB ({(double)allocated / Descendants:F0} B/descendant)");
        // Bounded: the chunks (5,000 rows) keep the peak far below what holding 100,000 descendants' keys and rows would take.
        Assert.True(peakHeap - heapBefore < 64L * 1024 * 1024, $"the managed heap grew by {(peakHeap - heapBefore) / 1048576.0:F1} MB");
    }

    private static async Task<long> CountAsync(PipelineHarness harness, string sql)
    {
        await using var connection = new NpgsqlConnection(harness.ChangelogConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        return (long)(await command.ExecuteScalarAsync())!;
    }
}
