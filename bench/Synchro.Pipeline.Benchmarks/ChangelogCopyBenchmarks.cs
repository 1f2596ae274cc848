using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using Npgsql;
using Synchro.Pipeline.Changelog;
using Synchro.Pipeline.LocalPostgres;

namespace Synchro.Pipeline.Benchmarks;

/// <summary>
/// Binary COPY of <see cref="Rows"/> changelog rows (results per row). <see cref="ServerCategory"/>: into
/// <c>sync_changelog</c> of a throwaway server started here (emptied before every iteration), with Npgsql's
/// <c>NpgsqlBinaryImporter</c> value by value (baseline, <see cref="ImporterCopy"/>) and as
/// <c>ChangelogStore.WriteChangelogAsync</c> does: our <c>PgCopyBinaryWriter</c> through a raw binary COPY. <see cref="EncodeCategory"/>: our encoding alone, no network.
/// </summary>
/// <remarks>
/// Both server paths are checked at setup to store the same rows. Row values are what the writer produces:
/// <c>user:</c> buckets of 500 owners, one table name, uuid-text record ids, a mix of operations.
/// </remarks>
[MemoryDiagnoser]
[GroupBenchmarksBy(BenchmarkLogicalGroupRule.ByCategory)]
[CategoriesColumn]
public class ChangelogCopyBenchmarks
{
    public const int Rows = 10_000;

    public const string ServerCategory = "Server";

    public const string EncodeCategory = "EncodeOnly";

    private readonly List<ChangelogRow> _rows = [];
    private LocalPostgresServer? _server;
    private NpgsqlConnection? _connection;

    [GlobalSetup]
    public async Task SetupAsync()
    {
        var operations = new[] { ChangeOperation.Insert, ChangeOperation.Update, ChangeOperation.Update, ChangeOperation.Delete };
        for (var i = 0; i < Rows; i++)
            _rows.Add(new ChangelogRow($"user:{(i * 7919) % 500}", "orders", $"00000000-0000-4000-8000-{i:x12}", operations[i % operations.Length]));

        _server = await LocalPostgresServer.StartAsync();
        _connection = new NpgsqlConnection(await _server.CreateDatabaseAsync("copy_bench"));
        await _connection.OpenAsync();
        await ChangelogSchema.EnsureAsync(_connection);
        Console.WriteLine($"// Server: PostgreSQL {_server.ServerVersion} on port {_server.Port}");

        await ImporterCopy.WriteChangelogAsync(_connection, _rows);
        var imported = await StoredAsync();
        Truncate();
        await ChangelogStore.WriteChangelogAsync(_connection, _rows, default);
        var raw = await StoredAsync();
        Truncate();
        if (imported.Count != Rows || !imported.SequenceEqual(raw))
            throw new InvalidOperationException($"The two COPY paths stored different rows ({imported.Count:N0} and {raw.Count:N0}).");
        Console.WriteLine($"// Validation: NpgsqlBinaryImporter and PgCopyBinaryWriter + raw COPY store the same {Rows:N0} rows.");
        var encoded = BenchSetupChecks.AllocatedBy(() => Encode());
        Console.WriteLine($"// Allocated by encoding {Rows:N0} rows (warm): {encoded:N0} bytes");
    }

    [IterationSetup(Targets = [nameof(NpgsqlBinaryImporter), nameof(PgCopyBinaryWriter_RawCopy)])]
    public void Truncate()
    {
        using var command = new NpgsqlCommand("TRUNCATE sync_changelog", _connection);
        command.ExecuteNonQuery();
    }

    [GlobalCleanup]
    public async Task CleanupAsync()
    {
        if (_connection is not null)
            await _connection.DisposeAsync();
        if (_server is not null)
            await _server.DisposeAsync();
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = Rows)]
    [BenchmarkCategory(ServerCategory)]
    public Task NpgsqlBinaryImporter() => ImporterCopy.WriteChangelogAsync(_connection!, _rows);

    [Benchmark(OperationsPerInvoke = Rows)]
    [BenchmarkCategory(ServerCategory)]
    public Task PgCopyBinaryWriter_RawCopy() => ChangelogStore.WriteChangelogAsync(_connection!, _rows, default);

    /// <summary>The encoding the raw path does, flushing (here: forgetting) every 64 KiB as it does.</summary>
    [Benchmark(OperationsPerInvoke = Rows)]
    [BenchmarkCategory(EncodeCategory)]
    public long PgCopyBinaryWriter_EncodeOnly() => Encode();

    private long Encode()
    {
        using var encoder = new PgCopyBinaryWriter();
        long bytes = 0;
        encoder.WriteHeader();
        foreach (var row in _rows)
        {
            ChangelogStore.EncodeChangelogRow(encoder, row);
            if (encoder.Length >= PgCopyBinaryWriter.FlushBytes)
            {
                bytes += encoder.Length;
                encoder.Clear();
            }
        }
        encoder.WriteTrailer();
        return bytes + encoder.Length;
    }

    private async Task<List<string>> StoredAsync()
    {
        var rows = new List<string>(Rows);
        await using var command = new NpgsqlCommand("SELECT bucket_id, table_name, record_id, operation FROM sync_changelog ORDER BY seq", _connection);
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
            rows.Add($"{reader.GetString(0)}|{reader.GetString(1)}|{reader.GetString(2)}|{reader.GetInt16(3)}");
        return rows;
    }
}
