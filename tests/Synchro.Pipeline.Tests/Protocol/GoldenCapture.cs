using Npgsql;
using NpgsqlTypes;
using Synchro.Pipeline.Protocol;
using Synchro.Pipeline.Tests.Infrastructure;

namespace Synchro.Pipeline.Tests.Protocol;

/// <summary>Runs a <see cref="GoldenScenario"/> on a real server and peeks its pgoutput stream.</summary>
internal static class GoldenCapture
{
    private const string Slot = "golden";
    private const string Publication = "golden_pub";

    /// <returns>The stream as <see cref="WalFrame"/>s (the fixture file format).</returns>
    public static async Task<byte[]> CaptureAsync(PostgresServerFixture postgres, GoldenScenario scenario)
    {
        var connectionString = await postgres.CreateDatabaseAsync(scenario.Name);
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        // Logical decoding reads only flushed WAL; the test server's synchronous_commit=off would
        // leave the last commits unflushed when the peek runs.
        await ExecuteAsync(connection, "SET synchronous_commit = on");

        foreach (var sql in scenario.Setup)
            await ExecuteAsync(connection, sql);
        await ExecuteAsync(connection, $"CREATE PUBLICATION {Publication} FOR ALL TABLES");
        await using (var create = new NpgsqlCommand("SELECT pg_create_logical_replication_slot(@slot, 'pgoutput', false, @twoPhase)", connection))
        {
            create.Parameters.AddWithValue("slot", Slot);
            create.Parameters.AddWithValue("twoPhase", scenario.TwoPhaseSlot);
            await create.ExecuteNonQueryAsync();
        }

        // The slot name is the server's, shared by every scenario: dropped whatever happens.
        var frames = new List<(Lsn, Lsn, byte[])>();
        try
        {
            foreach (var sql in scenario.Workload)
                await ExecuteAsync(connection, sql);

            if (scenario.SmallDecodingMemory)
                await ExecuteAsync(connection, "SET logical_decoding_work_mem = '64kB'");

            await using (var peek = new NpgsqlCommand("SELECT lsn, data FROM pg_logical_slot_peek_binary_changes(@slot, NULL, NULL, VARIADIC @options)", connection))
            {
                peek.Parameters.AddWithValue("slot", Slot);
                peek.Parameters.AddWithValue("options", NpgsqlDbType.Array | NpgsqlDbType.Text, PeekOptions(scenario.Options));
                await using var reader = await peek.ExecuteReaderAsync();
                while (await reader.ReadAsync())
                {
                    Lsn lsn = reader.GetFieldValue<NpgsqlLogSequenceNumber>(0);
                    frames.Add((lsn, lsn, reader.GetFieldValue<byte[]>(1)));
                }
            }
        }
        finally
        {
            await ExecuteAsync(connection, $"SELECT pg_drop_replication_slot('{Slot}')");
        }

        return FrameStream.Build(frames);
    }

    private static string[] PeekOptions(PgOutputOptions options)
    {
        var list = new List<string>
        {
            "proto_version", options.ProtocolVersion.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "publication_names", Publication,
        };
        if (options.Streaming != PgOutputStreaming.Off)
            list.AddRange(["streaming", options.Streaming == PgOutputStreaming.Parallel ? "parallel" : "on"]);
        if (options.TwoPhase)
            list.AddRange(["two_phase", "on"]);
        if (options.Binary)
            list.AddRange(["binary", "on"]);
        if (options.Messages)
            list.AddRange(["messages", "on"]);
        return [.. list];
    }

    private static async Task ExecuteAsync(NpgsqlConnection connection, string sql)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }
}
