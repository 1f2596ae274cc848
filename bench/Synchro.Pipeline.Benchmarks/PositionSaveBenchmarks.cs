// Run (needs the PostgreSQL server binaries, as the tests do; GlobalSetup starts a throwaway server):
//   cd bench/Synchro.Pipeline.Benchmarks && dotnet run -c Release -- --filter '*PositionSaveBenchmarks*'
using BenchmarkDotNet.Attributes;
using Npgsql;
using Synchro.Pipeline.Changelog;
using Synchro.Pipeline.LocalPostgres;
using Synchro.Pipeline.Protocol;
using Synchro.Pipeline.Replication;

namespace Synchro.Pipeline.Benchmarks;

/// <summary>
/// The position save the writer makes in every batch transaction, alone in its transaction: the Go reference's upsert
/// (slot and position, baseline) against the library's, which also writes the source the position belongs to
/// (invariant 8) from values read once per run.
/// </summary>
[MemoryDiagnoser]
public class PositionSaveBenchmarks
{
    private const string Slot = "synchro_slot";

    private const string ReferenceSql = """
        INSERT INTO sync_wal_position AS p (slot_name, confirmed_lsn, updated_at)
        VALUES ($1, $2, now())
        ON CONFLICT (slot_name) DO UPDATE
        SET confirmed_lsn = GREATEST(p.confirmed_lsn, EXCLUDED.confirmed_lsn), updated_at = now()
        """;

    private static readonly SourceIdentity s_source = new(7_716_008_738_669_856_979, 1, 16_384, "store_bench");

    private LocalPostgresServer? _server;
    private NpgsqlConnection? _connection;
    private long _position = 0x1_0000_0000;

    [GlobalSetup]
    public async Task SetupAsync()
    {
        _server = await LocalPostgresServer.StartAsync();
        _connection = new NpgsqlConnection(await _server.CreateDatabaseAsync("position_bench"));
        await _connection.OpenAsync();
        await ChangelogSchema.EnsureAsync(_connection);
        // As the writer's connection: every commit durable before the committer confirms it.
        await using (var durable = new NpgsqlCommand("SET synchronous_commit = on", _connection))
            await durable.ExecuteNonQueryAsync();
        await Reference();
        await Bound();
        var stored = await ChangelogStore.LoadPersistedPositionAsync(_connection, Slot, default);
        if (stored?.Source != s_source || stored.Position != new Lsn((ulong)_position))
            throw new InvalidOperationException($"Stored {stored}; expected position {new Lsn((ulong)_position)} bound to {s_source}.");
        Console.WriteLine($"// Server: PostgreSQL {_server.ServerVersion} on port {_server.Port}; validation: the bound position reads back.");
    }

    [GlobalCleanup]
    public async Task CleanupAsync()
    {
        if (_connection is not null)
            await _connection.DisposeAsync();
        if (_server is not null)
            await _server.DisposeAsync();
    }

    [Benchmark(Baseline = true)]
    public async Task Reference()
    {
        await using var transaction = await _connection!.BeginTransactionAsync();
        await using (var command = new NpgsqlCommand(ReferenceSql, _connection, transaction))
        {
            command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = Slot });
            command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = ++_position });
            await command.ExecuteNonQueryAsync();
        }
        await transaction.CommitAsync();
    }

    [Benchmark]
    public async Task Bound()
    {
        await using var transaction = await _connection!.BeginTransactionAsync();
        await ChangelogStore.SavePositionAsync(_connection, Slot, s_source, new Lsn((ulong)++_position), default);
        await transaction.CommitAsync();
    }
}
