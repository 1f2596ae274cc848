using System.Globalization;
using System.Text;
using Npgsql;
using Synchro.Pipeline.LoadHarness.Backlog;
using Synchro.Pipeline.LoadHarness.Contenders;
using Synchro.Pipeline.LocalPostgres;

namespace Synchro.Pipeline.LoadHarness.StreamingProtocols;

/// <summary>
/// The big transaction (<see cref="BigTransaction"/>) drained end to end with pgoutput protocol 2 (<c>streaming 'on'</c>)
/// and protocol 4 (<c>streaming 'parallel'</c>, PostgreSQL 16+), alternating on one server, each run on an emptied table,
/// a new slot and a changelog database of its own: wall time, CPU, peak RSS, the walsender's CPU and what the server
/// streamed and spilled (<c>pg_stat_replication_slots</c>).
/// </summary>
internal static class StreamingProtocolRunner
{
    public const string Verb = "streaming-protocols";

    public const string MarkdownFile = "streaming-protocols.md";

    private const string SlotStatsSql = """
        SELECT stream_txns, stream_count, stream_bytes, spill_txns, spill_bytes, total_bytes
        FROM pg_stat_replication_slots WHERE slot_name = $1
        """;

    public static async Task<int> RunAsync(HarnessOptions options, CancellationToken ct)
    {
        HarnessRunner.Progress("starting a throwaway PostgreSQL server");
        await using var server = await LocalPostgresServer.StartAsync(HarnessRunner.ServerOptions(options), ct);
        if (server.ServerVersion < 16)
        {
            await Console.Error.WriteLineAsync($"protocol 4 needs PostgreSQL 16 or later; this server is {server.ServerVersion} (set SYNCHRO_PG_BINDIR to a newer bin directory)");
            return 2;
        }
        var source = await server.CreateDatabaseAsync(BenchSchema.Database, ct);
        await BenchSchema.CreateAsync(source, options.Publication, ct);

        var rows = new List<string>();
        for (var run = 1; run <= options.Runs; run++)
        {
            // Alternating which goes first, so a trend over the runs (a warmer cache, a busier neighbour) favours neither.
            int[] protocols = run % 2 == 1 ? [2, 4] : [4, 2];
            foreach (var protocol in protocols)
            {
                await ExecuteAsync(source, "TRUNCATE orders, order_lines", ct);
                await ExecuteAsync(source, "CHECKPOINT", ct);
                HarnessRunner.Progress($"run {run}, protocol {protocol}: one transaction inserting {options.BigTransactionRows:N0} rows, drained end to end");
                var stop = await BigTransaction.GenerateAsync(source, options.BigTransactionRows, ct);
                var spec = new ContenderSpec
                {
                    Name = ContenderNames.OursEndToEnd,
                    SourceConnectionString = source,
                    ChangelogConnectionString = await server.CreateDatabaseAsync(string.Create(CultureInfo.InvariantCulture, $"changelog_p{protocol}_r{run}"), ct),
                    SlotName = BigTransaction.Slot,
                    PublicationName = BenchSchema.Publication,
                    StopLsn = stop,
                    BinaryTuples = options.BinaryTuples,
                    ParallelStreaming = protocol == 4,
                };
                var result = await HarnessRunner.WithWalsenderAsync(source, BigTransaction.Slot,
                    () => ContenderProcess.RunAsync(spec, HarnessRunner.Scale(options, options.BigTransactionRows / HarnessRunner.SlowestDrainChangesPerSecond), ct), ct);
                var stats = await SlotStatsAsync(source, ct);
                await BacklogGenerator.DropSlotsAsync(source, [BigTransaction.Slot], ct);
                if (!result.Succeeded)
                {
                    await Console.Error.WriteLineAsync($"run {run}, protocol {protocol} failed: {result.Error}");
                    return 1;
                }
                var row = string.Create(CultureInfo.InvariantCulture,
                    $"| {run} | {protocol} | {result.WallSeconds:F1} | {result.CpuSeconds:F1} | {result.PeakRssBytes / 1e6:F0} | {result.WalsenderCpuSeconds:F1} | {result.Changes:N0} | {stats}");
                HarnessRunner.Progress(row);
                rows.Add(row);
            }
        }

        var markdown = new StringBuilder()
            .AppendLine(CultureInfo.InvariantCulture, $"PostgreSQL {server.ServerVersion}, {Environment.ProcessorCount} cores, {options.BigTransactionRows:N0} rows in one transaction, {options.Runs} runs per protocol")
            .AppendLine()
            .AppendLine("| run | protocol | wall s | CPU s | peak RSS MB | walsender CPU s | changes | streamed txns | stream messages | streamed MB | spilled txns | spilled MB | total MB |")
            .AppendLine("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
        foreach (var row in rows)
            markdown.AppendLine(row);
        Directory.CreateDirectory(options.OutputDirectory);
        await File.WriteAllTextAsync(Path.Combine(options.OutputDirectory, MarkdownFile), markdown.ToString(), ct);
        Console.Write(markdown.ToString());
        return 0;
    }

    /// <summary>What the server's walsender streamed and spilled for the slot, as the table's last columns.</summary>
    private static async Task<string> SlotStatsAsync(string source, CancellationToken ct)
    {
        await using var connection = new NpgsqlConnection(source);
        await connection.OpenAsync(ct);
        // The walsender reports its slot's statistics when it exits; it may still be exiting.
        for (var attempt = 0; ; attempt++)
        {
            await using var command = new NpgsqlCommand(SlotStatsSql, connection);
            command.Parameters.AddWithValue(BigTransaction.Slot);
            await using var reader = await command.ExecuteReaderAsync(ct);
            if (await reader.ReadAsync(ct) && (reader.GetInt64(5) > 0 || attempt >= 50))
            {
                return string.Create(CultureInfo.InvariantCulture,
                    $"{reader.GetInt64(0):N0} | {reader.GetInt64(1):N0} | {reader.GetInt64(2) / 1e6:F0} | {reader.GetInt64(3):N0} | {reader.GetInt64(4) / 1e6:F0} | {reader.GetInt64(5) / 1e6:F0} |");
            }
            await reader.DisposeAsync();
            await Task.Delay(100, ct);
        }
    }

    private static async Task ExecuteAsync(string connectionString, string sql, CancellationToken ct)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(ct);
        await using var command = new NpgsqlCommand(sql, connection) { CommandTimeout = 0 };
        await command.ExecuteNonQueryAsync(ct);
    }
}
