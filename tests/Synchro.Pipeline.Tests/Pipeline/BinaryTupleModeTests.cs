using Npgsql;
using Synchro.Pipeline.Registry;
using Synchro.Pipeline.Tests.Infrastructure;
using Synchro.Pipeline.Decoding;

namespace Synchro.Pipeline.Tests.Pipeline;

/// <summary>
/// Binary tuple mode against a real server: two pipelines consume the same workload, one in text mode and one in
/// binary mode, each into its own changelog database, and their changelogs are identical row for row (and the
/// expected ones); a referenced column of a type without conversion fails at start, or at its Relation message
/// when the type changes while running.
/// </summary>
[Collection(PostgresCollection.Name)]
[Trait(TestCategories.Name, TestCategories.VersionSensitive)]
public sealed class BinaryTupleModeTests(PostgresServerFixture postgres)
{
    private const string Publication = "binary_pub";

    /// <summary>A key type: the column type, four ids and two owners as SQL literals, and their text forms.</summary>
    private sealed record KeyType(string Table, string SqlType, string[] Ids, string[] Owners)
    {
        public static string Text(string literal) => literal.Trim('\'');
    }

    private static readonly KeyType[] s_types =
    [
        new("k_uuid", "uuid",
            ["'9f1c2a4e-8d3b-4c5e-a1f0-123456789abc'", "'00000000-0000-0000-0000-000000000000'", "'ffffffff-ffff-ffff-ffff-ffffffffffff'", "'0a0b0c0d-0e0f-4011-8213-141516171819'"],
            ["'aaaaaaaa-0000-4000-8000-000000000001'", "'bbbbbbbb-0000-4000-8000-000000000002'"]),
        new("k_int4", "int4", ["-2147483648", "0", "2147483647", "42"], ["-1", "7"]),
        new("k_int8", "int8", ["-9223372036854775808", "1", "9223372036854775807", "-42"], ["-9000000000", "9000000000"]),
        new("k_int2", "int2", ["-32768", "0", "32767", "5"], ["-3", "300"]),
        new("k_text", "text", ["'név-1'", "'id two'", "'東京 3'", "''"], ["'owner ä'", "'owner b'"]),
        new("k_varchar", "varchar(40)", ["'v1'", "'v 2'", "'v3'", "'v🚀4'"], ["'o1'", "'o2'"]),
    ];

    [Fact]
    public async Task Binary_mode_writes_exactly_the_changelog_of_text_mode()
    {
        var source = await postgres.CreateDatabaseAsync("binary_source");
        var textChangelog = await postgres.CreateDatabaseAsync("binary_text_log");
        var binaryChangelog = await postgres.CreateDatabaseAsync("binary_bin_log");
        var schema = string.Concat(s_types.Select(t => $"CREATE TABLE {t.Table} (id {t.SqlType} PRIMARY KEY, owner_id {t.SqlType}, n int NOT NULL DEFAULT 0, deleted_at timestamptz);"));
        await Sql.ExecuteAsync(source, schema + $"""
            CREATE TABLE lines (id int8 PRIMARY KEY, order_id uuid NOT NULL);
            CREATE PUBLICATION {Publication} FOR ALL TABLES;
            """);

        await using var text = await StartAsync(Options(source, textChangelog, "binary_text_slot", binary: false));
        await using var binary = await StartAsync(Options(source, binaryChangelog, "binary_bin_slot", binary: true));

        var expected = new List<string>();
        foreach (var type in s_types)
        {
            await RunWorkloadAsync(source, type);
            expected.AddRange(ExpectedRows(type));
        }
        // A child table whose parent (a uuid row never changed afterwards) is found through its converted foreign key.
        var parent = s_types[0].Owners[0];
        await Sql.ExecuteAsync(source, $"INSERT INTO k_uuid (id, owner_id) VALUES ('5a5a5a5a-0000-4000-8000-000000000005', {parent})");
        await Sql.ExecuteAsync(source, "INSERT INTO lines VALUES (1, '5a5a5a5a-0000-4000-8000-000000000005'), (-2, '5a5a5a5a-0000-4000-8000-000000000005')");
        var bucket = $"user:{KeyType.Text(parent)}";
        expected.AddRange([$"{bucket} k_uuid 5a5a5a5a-0000-4000-8000-000000000005 1", $"{bucket} lines 1 1", $"{bucket} lines -2 1"]);

        var textRows = await text.WaitForChangelogAsync(textChangelog, expected.Count);
        var binaryRows = await binary.WaitForChangelogAsync(binaryChangelog, expected.Count);

        Assert.Equal(expected, textRows);
        Assert.Equal(textRows, binaryRows);
    }

    [Fact]
    public async Task An_unsupported_referenced_column_type_fails_at_start_naming_table_column_and_type()
    {
        var source = await postgres.CreateDatabaseAsync("binary_unsupported");
        await Sql.ExecuteAsync(source, $"""
            CREATE TABLE accounts (id uuid PRIMARY KEY, owner_id numeric(10,2), deleted_at timestamptz);
            CREATE TABLE events (id timestamptz PRIMARY KEY, owner_id int4, removed jsonb);
            CREATE PUBLICATION {Publication} FOR ALL TABLES;
            """);
        var options = Options(source, null, "binary_unsupported_slot", binary: true);
        options.Tables = new TableRegistry()
            .Add(new TableRegistration("accounts") { OwnerColumn = "owner_id" })
            // A jsonb soft-delete column is fine: only its presence is read.
            .Add(new TableRegistration("events") { OwnerColumn = "owner_id", SoftDeleteColumn = "removed" });

        await using var pipeline = new WalPipeline(options);
        var error = await Assert.ThrowsAsync<WalPipelineConfigurationException>(() => pipeline.RunAsync());

        Assert.Equal(2, error.Errors.Count);
        Assert.Equal(BinaryValueText.UnsupportedColumn("\"public\".\"accounts\"", "owner_id", "numeric(10,2)"), error.Errors[0]);
        Assert.Equal(BinaryValueText.UnsupportedColumn("\"public\".\"events\"", "id", "timestamp with time zone"), error.Errors[1]);
        Assert.Contains("Column 'owner_id' of table \"public\".\"accounts\" is of type numeric(10,2)", error.Message, StringComparison.Ordinal);
        Assert.Contains("Turn BinaryTupleMode off", error.Message, StringComparison.Ordinal);
        // Text mode accepts the same tables.
        options.BinaryTupleMode = false;
        Assert.DoesNotContain(await WalPipeline.CheckAsync(options), w => w.Contains("BinaryTupleMode", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_column_type_changed_while_running_fails_at_its_Relation_message()
    {
        var source = await postgres.CreateDatabaseAsync("binary_altered");
        await Sql.ExecuteAsync(source, $"""
            CREATE TABLE accounts (id int8 PRIMARY KEY, owner_id int4, deleted_at timestamptz);
            CREATE PUBLICATION {Publication} FOR ALL TABLES;
            """);
        var options = Options(source, null, "binary_altered_slot", binary: true);
        options.Tables = new TableRegistry().Add(new TableRegistration("accounts") { OwnerColumn = "owner_id" });
        await using var pipeline = await StartAsync(options);

        await Sql.ExecuteAsync(source, "INSERT INTO accounts VALUES (1, 10)");
        Assert.Equal(["user:10 accounts 1 1"], await pipeline.WaitForChangelogAsync(source, 1));
        await Sql.ExecuteAsync(source, "ALTER TABLE accounts ALTER COLUMN owner_id TYPE numeric(12,2)");
        await Sql.ExecuteAsync(source, "INSERT INTO accounts VALUES (2, 20)");

        var error = await Assert.ThrowsAsync<WalPipelineException>(() => pipeline.Running.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Contains("Column 'owner_id' of table public.accounts is of type numeric, which binary tuple mode cannot turn into its text form", error.Message, StringComparison.Ordinal);
        Assert.Equal(["user:10 accounts 1 1"], await PipelineHarness.ChangelogAsync(source));
    }

    /// <summary>Inserts, a plain update, an owner move, a null owner, a soft delete, an id change and a hard delete.</summary>
    private static async Task RunWorkloadAsync(string source, KeyType type)
    {
        var (t, ids, owners) = (type.Table, type.Ids, type.Owners);
        string[] statements =
        [
            $"INSERT INTO {t} (id, owner_id) VALUES ({ids[0]}, {owners[0]}), ({ids[1]}, {owners[1]})",
            $"UPDATE {t} SET n = n + 1 WHERE id = {ids[1]}",
            $"UPDATE {t} SET owner_id = {owners[1]} WHERE id = {ids[0]}",
            $"UPDATE {t} SET owner_id = NULL WHERE id = {ids[1]}",
            $"UPDATE {t} SET deleted_at = now() WHERE id = {ids[1]}",
            $"UPDATE {t} SET id = {ids[2]} WHERE id = {ids[0]}",
            $"UPDATE {t} SET deleted_at = now() WHERE id = {ids[2]}",
            $"INSERT INTO {t} (id, owner_id) VALUES ({ids[3]}, {owners[0]})",
            $"DELETE FROM {t} WHERE id = {ids[3]}",
        ];
        foreach (var statement in statements)
            await Sql.ExecuteAsync(source, statement);
    }

    private static IEnumerable<string> ExpectedRows(KeyType type)
    {
        var t = type.Table;
        var (x1, x2, x3, x4) = (KeyType.Text(type.Ids[0]), KeyType.Text(type.Ids[1]), KeyType.Text(type.Ids[2]), KeyType.Text(type.Ids[3]));
        var (o1, o2) = ($"user:{KeyType.Text(type.Owners[0])}", $"user:{KeyType.Text(type.Owners[1])}");
        return
        [
            $"{o1} {t} {x1} 1", $"{o2} {t} {x2} 1",
            $"{o2} {t} {x2} 2",
            $"{o2} {t} {x1} 1", $"{o1} {t} {x1} 3",
            $"{o2} {t} {x2} 3",
            // The soft delete of x2, now in no bucket, writes nothing.
            $"{o2} {t} {x1} 3", $"{o2} {t} {x3} 1",
            $"{o2} {t} {x3} 3",
            $"{o1} {t} {x4} 1", $"{o1} {t} {x4} 3",
        ];
    }

    private static WalPipelineOptions Options(string source, string? changelog, string slot, bool binary) => new()
    {
        ConnectionString = source,
        ChangelogConnectionString = changelog,
        SlotName = slot,
        PublicationName = Publication,
        BinaryTupleMode = binary,
        Tables = Registry(),
        BatchLinger = TimeSpan.FromMilliseconds(5),
        StatusInterval = TimeSpan.FromSeconds(1),
        MaxReconnectDelay = TimeSpan.FromSeconds(1),
    };

    private static TableRegistry Registry()
    {
        var registry = new TableRegistry();
        foreach (var type in s_types)
            registry.Add(new TableRegistration(type.Table) { OwnerColumn = "owner_id" });
        return registry.Add(new TableRegistration("lines") { ParentTable = "k_uuid", ParentForeignKeyColumn = "order_id", SoftDeleteColumn = null });
    }

    private static async Task<RunningPipeline> StartAsync(WalPipelineOptions options)
    {
        var running = new RunningPipeline(options);
        var deadline = DateTime.UtcNow.AddSeconds(30);
        await using var connection = new NpgsqlConnection(options.ConnectionString);
        await connection.OpenAsync();
        while (true)
        {
            await using (var command = new NpgsqlCommand(PipelineHostProcess.SlotStreamingQuery, connection))
            {
                command.Parameters.AddWithValue(options.SlotName);
                if ((bool)(await command.ExecuteScalarAsync())!)
                    return running;
            }
            if (running.Running.IsCompleted)
                await running.Running;
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"The pipeline did not start streaming from slot {options.SlotName} in 30 s.");
            await Task.Delay(20);
        }
    }

    private sealed class RunningPipeline : IAsyncDisposable
    {
        private readonly WalPipeline _pipeline;
        private readonly CancellationTokenSource _stop = new();
        private readonly string _source;
        private readonly string _slot;

        public RunningPipeline(WalPipelineOptions options)
        {
            _pipeline = new WalPipeline(options);
            _source = options.ConnectionString;
            _slot = options.SlotName;
            Running = _pipeline.RunAsync(_stop.Token);
        }

        public Task Running { get; }

        /// <summary>Waits until the changelog holds at least <paramref name="count"/> rows, then until the pipeline committed everything the source wrote so far, to catch extra ones.</summary>
        public async Task<List<string>> WaitForChangelogAsync(string changelog, int count)
        {
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (true)
            {
                if (Running.IsFaulted)
                    await Running;
                var rows = await PipelineHarness.ChangelogAsync(changelog);
                if (rows.Count >= count)
                {
                    await CommittedPosition.WaitUntilCommittedAsync(_source, _pipeline, Running);
                    return await PipelineHarness.ChangelogAsync(changelog);
                }
                if (DateTime.UtcNow > deadline)
                    throw new TimeoutException($"The changelog has {rows.Count} rows, expected {count}:{Environment.NewLine}{string.Join(Environment.NewLine, rows)}");
                await Task.Delay(50);
            }
        }

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            try
            {
                await Running;
            }
            catch (Exception)
            {
                // A test that expects the pipeline to fail has asserted its error already.
            }
            await _pipeline.DisposeAsync();
            _stop.Dispose();
            await Sql.ExecuteAsync(_source, $"SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = '{_slot}' AND NOT active");
        }
    }
}
