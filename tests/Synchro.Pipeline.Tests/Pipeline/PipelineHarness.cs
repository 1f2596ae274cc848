using Npgsql;
using Synchro.Pipeline.Buckets;
using Synchro.Pipeline.Registry;
using Synchro.Pipeline.Tests.Infrastructure;

namespace Synchro.Pipeline.Tests.Pipeline;

/// <summary>A source database with the demo schema and a pipeline consuming it in the background.</summary>
internal sealed class PipelineHarness : IAsyncDisposable
{
    public const string Publication = "synchro_pub";

    public const string Schema = """
        CREATE TABLE orders (id uuid PRIMARY KEY, user_id text, total int NOT NULL DEFAULT 0, deleted_at timestamptz);
        CREATE TABLE order_lines (id int PRIMARY KEY, order_id uuid NOT NULL REFERENCES orders (id), quantity int NOT NULL);
        CREATE INDEX order_lines_order_id ON order_lines (order_id);
        CREATE TABLE categories (id int PRIMARY KEY, name text NOT NULL, deleted_at timestamptz);
        CREATE TABLE unregistered (id int PRIMARY KEY, user_id text);
        CREATE PUBLICATION synchro_pub FOR TABLE orders, order_lines, categories, unregistered;
        """;

    private CancellationTokenSource? _stop;
    private Task? _running;

    private PipelineHarness(string connectionString, string slot, string? changelogConnectionString = null)
    {
        ConnectionString = connectionString;
        Slot = slot;
        ChangelogConnectionString = changelogConnectionString ?? connectionString;
    }

    public string ConnectionString { get; }

    /// <summary>Where the changelog is written: the source database unless the harness was given another.</summary>
    public string ChangelogConnectionString { get; }

    public string Slot { get; }

    public WalPipeline? Pipeline { get; private set; }

    public static TableRegistry Registry() => new TableRegistry()
        .Add(new TableRegistration("orders") { OwnerColumn = "user_id" })
        .Add(new TableRegistration("order_lines") { ParentTable = "orders", ParentForeignKeyColumn = "order_id", SoftDeleteColumn = null })
        .Add(new TableRegistration("categories") { GlobalWhenBucketNull = true });

    public static async Task<PipelineHarness> CreateAsync(PostgresServerFixture postgres, string name)
    {
        var connectionString = await postgres.CreateDatabaseAsync(name);
        var harness = new PipelineHarness(connectionString, "slot_" + name.Replace('-', '_'));
        await harness.ExecuteAsync(Schema);
        return harness;
    }

    /// <summary>A harness on <paramref name="source"/> that already holds the demo schema, writing its changelog into <paramref name="changelog"/>.</summary>
    public static PipelineHarness Attach(string source, string slot, string changelog) => new(source, slot, changelog);

    public WalPipelineOptions Options(IBucketAssigner? assigner = null, int maxBatchRows = 10_000) => new()
    {
        ConnectionString = ConnectionString,
        SlotName = Slot,
        PublicationName = Publication,
        Tables = Registry(),
        BucketAssigner = assigner,
        MaxBatchRows = maxBatchRows,
        BatchLinger = TimeSpan.FromMilliseconds(5),
        StatusInterval = TimeSpan.FromSeconds(1),
        MaxReconnectDelay = TimeSpan.FromSeconds(1),
        ChangelogConnectionString = ChangelogConnectionString == ConnectionString ? null : ChangelogConnectionString,
    };

    /// <summary>
    /// Starts a pipeline in the background and waits until it streams from its slot; it runs until <see cref="StopAsync"/>.
    /// A pipeline that fails before it streams throws its error here.
    /// </summary>
    public async Task StartAsync(WalPipelineOptions? options = null)
    {
        Pipeline = new WalPipeline(options ?? Options());
        _stop = new CancellationTokenSource();
        _running = Pipeline.RunAsync(_stop.Token);
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!await StreamingAsync())
        {
            if (_running.IsCompleted)
            {
                // Throws what the pipeline failed with, and leaves the harness ready for another start.
                await StopAsync();
                throw new InvalidOperationException($"The pipeline ended before it streamed from slot {Slot}.");
            }
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"The pipeline did not start streaming from slot {Slot} in 30 s.");
            await Task.Delay(20);
        }
    }

    private async Task<bool> StreamingAsync()
    {
        await using var connection = new NpgsqlConnection(ConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(PipelineHostProcess.SlotStreamingQuery, connection);
        command.Parameters.AddWithValue(Slot);
        return (bool)(await command.ExecuteScalarAsync())!;
    }

    /// <summary>The running pipeline's task (faults with its fatal error).</summary>
    public Task Running => _running ?? throw new InvalidOperationException("Not started.");

    /// <summary>Stops the pipeline and throws what it failed with, if it did; either way the harness can start another.</summary>
    public async Task StopAsync()
    {
        if (_stop is null || _running is null)
            return;
        try
        {
            await _stop.CancelAsync();
            await _running;
        }
        finally
        {
            await Pipeline!.DisposeAsync();
            _stop.Dispose();
            _stop = null;
            _running = null;
        }
    }

    public Task ExecuteAsync(string sql) => Sql.ExecuteAsync(ConnectionString, sql);

    public Task<T> ScalarAsync<T>(string sql) => Sql.ScalarAsync<T>(ConnectionString, sql);

    /// <summary>The changelog as "bucket table record op" lines in seq order.</summary>
    public Task<List<string>> ChangelogAsync() => ChangelogAsync(ChangelogConnectionString);

    /// <summary>The changelog rows of the database at <paramref name="connectionString"/> as "bucket table record operation", in seq order.</summary>
    public static async Task<List<string>> ChangelogAsync(string connectionString)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT bucket_id, table_name, record_id, operation FROM sync_changelog ORDER BY seq", connection);
        await using var reader = await command.ExecuteReaderAsync();
        var rows = new List<string>();
        while (await reader.ReadAsync())
            rows.Add($"{reader.GetString(0)} {reader.GetString(1)} {reader.GetString(2)} {reader.GetInt16(3)}");
        return rows;
    }

    /// <summary>
    /// Waits until the changelog holds at least <paramref name="count"/> rows and, while the pipeline runs, until it has
    /// committed everything the source wrote so far; returns the rows then.
    /// </summary>
    public async Task<List<string>> WaitForChangelogAsync(int count, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(30));
        while (true)
        {
            if (_running is { IsFaulted: true })
                await _running;
            var rows = await ChangelogAsync();
            if (rows.Count >= count)
            {
                // A duplicate that arrives later must not pass: with the pipeline running, read again once it has
                // committed everything written so far. A pipeline that stops meanwhile (a test of a fatal error) ends the wait.
                if (_running is { IsCompleted: false } running)
                {
                    try
                    {
                        await WaitUntilCaughtUpAsync();
                    }
                    catch (Exception) when (running.IsCompleted)
                    {
                    }
                    rows = await ChangelogAsync();
                }
                return rows;
            }
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"The changelog has {rows.Count} rows, expected {count}:{Environment.NewLine}{string.Join(Environment.NewLine, rows)}");
            await Task.Delay(50);
        }
    }

    /// <summary>
    /// Waits until the running pipeline has committed everything the source wrote so far (a heartbeat written now, see
    /// <see cref="CommittedPosition"/>): after it, nothing more of the workload before it can arrive.
    /// </summary>
    public Task WaitUntilCaughtUpAsync()
        => CommittedPosition.WaitUntilCommittedAsync(ConnectionString, Pipeline ?? throw new InvalidOperationException("Not started."), Running);

    public async ValueTask DisposeAsync()
    {
        try
        {
            await StopAsync();
        }
        catch (Exception)
        {
        }
        try
        {
            await ExecuteAsync($"SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = '{Slot}' AND NOT active");
        }
        catch (PostgresException)
        {
        }
    }
}
