using System.Buffers.Binary;
using System.Globalization;
using System.Runtime.Versioning;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Logging;
using Npgsql;
using Synchro.Pipeline.Decoding.Spill;
using Synchro.Pipeline.Diagnostics;
using Synchro.Pipeline.Protocol;
using Synchro.Pipeline.Tests.Infrastructure;
using Xunit.Abstractions;
using static Synchro.Pipeline.Tests.Pipeline.StreamedTransactionTests;

namespace Synchro.Pipeline.Tests.Pipeline;

/// <summary>
/// Spill files under faults, against a real server: a pipeline process killed with SIGKILL while it spills a streamed
/// transaction, a flipped byte in a local file (read again from the server), damaged or newer stored chunks of a prepared
/// transaction (which the server will not send again: the pipeline stops and says what to do), rows stored by an earlier
/// version, and the cap.
/// </summary>
[Collection(PostgresCollection.Name)]
[UnsupportedOSPlatform("windows")]
public sealed partial class SpillFaultTests(PostgresServerFixture postgres, ITestOutputHelper output)
{
    private const UnixFileMode OwnerOnly = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    [Fact]
    public async Task SIGKILL_while_spilling_a_streamed_transaction_then_the_next_start_removes_the_files_and_streams_it_again_and_the_changelog_is_exact()
    {
        const string Slot = "slot_spill_kill";
        var connectionString = await postgres.CreateDatabaseAsync("spill_kill");
        using var workload = await AuditedWorkload.CreateAsync(postgres.Server, connectionString);
        await Sql.ExecuteAsync(connectionString, "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET logical_decoding_work_mem = %L', current_database(), '64kB'); END $$");
        // The test host's options: the default spill root, the user's own under the temporary directory.
        var spillDirectory = WalPipeline.SpillDirectoryFor(new WalPipelineOptions { ConnectionString = connectionString, SlotName = Slot });
        Assert.EndsWith($"synchro-pipeline-spill-{UnixFileStatus.EffectiveUserId}", Path.GetDirectoryName(spillDirectory), StringComparison.Ordinal);

        var host = StartHost(connectionString, Slot);
        try
        {
            await PipelineHostProcess.WaitForSlotAsync(connectionString, Slot);
            var pgbench = workload.RunPgbenchAsync(seconds: 15, rate: 100);

            await using var large = new NpgsqlConnection(workload.ConnectionString);
            await large.OpenAsync();
            await ExecuteAsync(large, "BEGIN");
            var xid = await XidAsync(large);
            var file = Path.Combine(spillDirectory, $"{xid}.spill");
            await ExecuteAsync(large, LargeInsert(500_000, 519_999));
            await WaitAsync(() => Size(file) > 256 * 1024, "the pipeline process to spill the streamed transaction");
            Assert.Equal(OwnerOnly, File.GetUnixFileMode(spillDirectory));
            Assert.Equal(OwnerOnly, File.GetUnixFileMode(Path.GetDirectoryName(spillDirectory)!));
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(file));

            // The kill lands while the process writes the file: more of the transaction streams, and the file is seen growing.
            var before = Size(file);
            var more = ExecuteAsync(large, LargeInsert(520_000, 539_999));
            await WaitAsync(() => Size(file) > before + 64 * 1024, "the spill file to grow");
            await host.KillAsync();
            var left = Size(file);
            Assert.True(left > before, "the killed process left its spill file");
            await more;
            host.Dispose();

            host = StartHost(connectionString, Slot);
            await PipelineHostProcess.WaitForSlotAsync(connectionString, Slot);
            // The new start removed what the killed one left, and the server streams the open transaction again from its
            // start: its new file grows to what the killed process had written (less what either holds in its 64 KiB buffer).
            await WaitAsync(() => host.Errors.Any(l => l.StartsWith("event 2004 ", StringComparison.Ordinal) && l.Contains(spillDirectory, StringComparison.Ordinal)),
                "the new start to remove the files the killed one left");
            await WaitAsync(() => Size(file) >= left - 64 * 1024, "the transaction to be streamed again into a new file");
            await ExecuteAsync(large, "COMMIT");
            await pgbench;

            await workload.InsertMarkerAsync();
            await workload.WaitForMarkerAsync(
                host.ThrowIfExitedAsync,
                TimeSpan.FromMinutes(3));
            output.WriteLine($"the killed process left {left:N0} bytes in {file}; {string.Join(" | ", host.Errors.Where(l => l.StartsWith("event 2004 ", StringComparison.Ordinal)))}");
        }
        finally
        {
            host.Dispose();
        }

        var rows = await workload.AssertChangelogMatchesAuditAsync(minimumRows: 40_000);
        output.WriteLine($"{rows} changelog rows match the audit trail");
        Assert.Empty(Directory.GetFiles(spillDirectory));
        Assert.True(await workload.ScalarAsync<long>($"SELECT stream_txns FROM pg_stat_replication_slots WHERE slot_name = '{Slot}'") >= 2, "the transaction was streamed twice");
    }

    [Fact]
    public async Task A_flipped_byte_in_the_spill_file_of_a_streamed_transaction_is_refused_and_the_transaction_read_again_from_the_server()
    {
        await using var harness = await CreateAsync("spill_flipped");
        var logs = new RecordingLoggerFactory(LogLevel.Information);
        var options = Options(harness);
        options.LoggerFactory = logs;
        var spillDirectory = WalPipeline.SpillDirectoryFor(options);
        await harness.StartAsync(options);

        await using var transaction = await OpenAsync(harness);
        await ExecuteAsync(transaction, "BEGIN");
        var file = Path.Combine(spillDirectory, $"{await XidAsync(transaction)}.spill");
        await ExecuteAsync(transaction, Insert(1, 10_000));
        await WaitAsync(() => Size(file) > 200_000, "the transaction to be spilled");
        FlipByte(file, 100_000);
        await ExecuteAsync(transaction, "COMMIT");

        // Exactly the transaction's rows, once: the damaged file was not used, and the server sent the transaction again.
        Assert.Equal(Rows(1, 10_000), await harness.WaitForChangelogAsync(10_000));
        Assert.Equal(10_000L, await harness.ScalarAsync<long>("SELECT count(*) FROM sync_bucket_edges"));
        Assert.Equal(1, harness.Pipeline!.SpillStatistics.DamagedFiles);
        var entries = logs.Entries.ToList();
        var damaged = Assert.Single(entries, e => e.EventId.Id == EventIds.SpillFileDamaged);
        Assert.Equal(LogLevel.Warning, damaged.Level);
        Assert.StartsWith($"The spill file {file} is damaged at byte ", damaged.Message, StringComparison.Ordinal);
        Assert.EndsWith("It is not used: the pipeline reconnects and the server sends its transaction again", damaged.Message, StringComparison.Ordinal);
        Assert.Contains(entries, e => e.EventId.Id == EventIds.Reconnecting);
        Assert.Equal(WalPipelineState.Running, harness.Pipeline.GetStatus().State);
        Assert.Empty(Directory.GetFiles(spillDirectory));
        output.WriteLine(damaged.Message);
    }

    [Fact]
    public async Task Damaged_stored_changes_of_a_prepared_transaction_stop_the_pipeline_with_its_gid_and_skipping_it_keeps_what_can_be_read()
    {
        await using var harness = await CreateAsync("spill_stored_damaged");
        var logs = new RecordingLoggerFactory(LogLevel.Information);
        var options = TwoPhaseOptions(harness, logs);
        await harness.StartAsync(options);

        await harness.ExecuteAsync($"BEGIN; {Insert(1, 2_500)}; PREPARE TRANSACTION 'damaged one';");
        await WaitForPreparedAsync(harness, 3);
        // A byte of the second chunk goes bad in the changelog database.
        await harness.ExecuteAsync("UPDATE sync_prepared_transactions SET data = set_byte(data, 200, get_byte(data, 200) # 1) WHERE gid = 'damaged one' AND chunk = 1");
        await harness.ExecuteAsync("COMMIT PREPARED 'damaged one'");

        var error = await FailureAsync(harness);
        output.WriteLine(error.Message);
        Assert.StartsWith($"The stored changes of prepared transaction 'damaged one' (sync_prepared_transactions, slot {harness.Slot}) cannot be used: "
            + $"The spilled changes in sync_prepared_transactions (slot {harness.Slot}, gid 'damaged one', chunk 1) are damaged at byte ", error.Message, StringComparison.Ordinal);
        Assert.Contains("The server will not send them again: the changelog's position is past the transaction's PREPARE", error.Message, StringComparison.Ordinal);
        Assert.Contains("Nothing of the transaction was written.", error.Message, StringComparison.Ordinal);
        Assert.Empty(await harness.ChangelogAsync());

        // What the message says to do: skip it; the readable changes are kept for replay-failures.
        var lsn = Lsn.Parse(SkipCommand().Match(error.Message).Groups[1].Value, CultureInfo.InvariantCulture);
        await WalPipeline.SkipTransactionAsync(options, lsn);
        await harness.StartAsync(options);
        await harness.ExecuteAsync($"INSERT INTO orders (id, user_id) VALUES ('{Uuid(900_000)}', 'after')");

        Assert.Equal([$"user:after orders {Uuid(900_000)} 1"], await harness.WaitForChangelogAsync(1));
        await WaitForPreparedAsync(harness, 0);
        var kept = await harness.ScalarAsync<long>("SELECT count(*) FROM sync_rule_failures WHERE error_text LIKE 'skipped on purpose%'");
        Assert.InRange(kept, 1_000, 1_010);
        var warning = Assert.Single(logs.Entries, e => e.EventId.Id == EventIds.StoredPreparedTransactionDamaged);
        Assert.Contains($"the {kept} change(s) before the damage were kept in sync_rule_failures, the rest are lost", warning.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Stored_changes_of_a_newer_format_version_stop_the_pipeline_and_say_so()
    {
        await using var harness = await CreateAsync("spill_stored_newer");
        var options = TwoPhaseOptions(harness, new RecordingLoggerFactory());
        await harness.StartAsync(options);

        await harness.ExecuteAsync($"BEGIN; {Insert(1, 10)}; PREPARE TRANSACTION 'from the future';");
        await WaitForPreparedAsync(harness, 1);
        // The header's version (bytes 8 to 11 of the first chunk) as a later version would write it.
        await harness.ExecuteAsync("UPDATE sync_prepared_transactions SET data = set_byte(data, 8, 2) WHERE gid = 'from the future' AND chunk = 0");
        await harness.ExecuteAsync("COMMIT PREPARED 'from the future'");

        var error = await FailureAsync(harness);
        Assert.StartsWith($"The stored changes of prepared transaction 'from the future' (sync_prepared_transactions, slot {harness.Slot}) are in spill format version 2, "
            + "which this version of Synchro.Pipeline cannot read (it reads versions 0 to 1): a newer version stored them.", error.Message, StringComparison.Ordinal);
        Assert.Contains("Run the newer version until its COMMIT PREPARED", error.Message, StringComparison.Ordinal);
        Assert.Empty(await harness.ChangelogAsync());
        Assert.Equal(1L, await harness.ScalarAsync<long>("SELECT count(*) FROM sync_prepared_transactions"));
    }

    [Fact]
    public async Task Rows_stored_by_an_earlier_version_without_header_or_checksums_are_still_applied()
    {
        await using var harness = await CreateAsync("spill_stored_v0");
        var options = TwoPhaseOptions(harness, new RecordingLoggerFactory());
        await harness.StartAsync(options);
        await harness.ExecuteAsync($"BEGIN; {Insert(1, 2_500)}; PREPARE TRANSACTION 'stored before the upgrade';");
        await WaitForPreparedAsync(harness, 3);
        await harness.StopAsync();

        // The chunks as version 0 stored them: the same records, without the header and the frames.
        await using (var connection = await OpenAsync(harness))
        {
            var chunks = new List<(int Chunk, byte[] Data)>();
            await using (var read = new NpgsqlCommand("SELECT chunk, data FROM sync_prepared_transactions ORDER BY chunk", connection))
            await using (var reader = await read.ExecuteReaderAsync())
            {
                while (await reader.ReadAsync())
                    chunks.Add((reader.GetInt32(0), (byte[])reader[1]));
            }
            foreach (var (chunk, data) in chunks)
            {
                await using var write = new NpgsqlCommand("UPDATE sync_prepared_transactions SET data = $1 WHERE chunk = $2", connection);
                write.Parameters.AddWithValue(Unframed(data, chunk == 0 ? SpillFormat.HeaderBytes : 0));
                write.Parameters.AddWithValue(chunk);
                Assert.Equal(1, await write.ExecuteNonQueryAsync());
            }
        }
        Assert.Equal((byte)'T', await harness.ScalarAsync<short>("SELECT get_byte(data, 0)::smallint FROM sync_prepared_transactions WHERE chunk = 0"));

        await harness.ExecuteAsync("COMMIT PREPARED 'stored before the upgrade'");
        await harness.StartAsync(options);

        Assert.Equal(Rows(1, 2_500), await harness.WaitForChangelogAsync(2_500));
        await WaitForPreparedAsync(harness, 0);
    }

    [Fact]
    public async Task A_transaction_past_MaxSpillBytes_stops_the_pipeline_naming_it_and_is_written_once_the_cap_is_raised()
    {
        await using var harness = await CreateAsync("spill_cap");
        var options = Options(harness);
        options.MaxSpillBytes = 1024 * 1024;
        var spillDirectory = WalPipeline.SpillDirectoryFor(options);
        await harness.StartAsync(options);

        await using (var transaction = await OpenAsync(harness))
        {
            await ExecuteAsync(transaction, "BEGIN");
            var xid = await XidAsync(transaction);
            await ExecuteAsync(transaction, Insert(1, 30_000));
            await ExecuteAsync(transaction, "COMMIT");

            var error = await FailureAsync(harness);
            output.WriteLine(error.Message);
            Assert.StartsWith($"The source transaction with xid {xid} needs more local spill space than MaxSpillBytes allows (1,048,576 bytes): its file {Path.Combine(spillDirectory, $"{xid}.spill")} holds ",
                error.Message, StringComparison.Ordinal);
            Assert.Contains("None of its changes reached the changelog, and the server sends the transaction again at the next start.", error.Message, StringComparison.Ordinal);
        }
        Assert.Empty(await harness.ChangelogAsync());
        Assert.Empty(Directory.GetFiles(spillDirectory));

        options = Options(harness);
        options.MaxSpillBytes = 64 * 1024 * 1024;
        await harness.StartAsync(options);
        Assert.Equal(Rows(1, 30_000), await harness.WaitForChangelogAsync(30_000));
    }

    private async Task<PipelineHarness> CreateAsync(string name)
    {
        var harness = await PipelineHarness.CreateAsync(postgres, name);
        await LowerDecodingMemoryAsync(harness);
        return harness;
    }

    /// <summary>The fatal error the running pipeline stops with; the failed pipeline is disposed, so the harness can start another.</summary>
    private static async Task<WalPipelineException> FailureAsync(PipelineHarness harness)
    {
        var error = await Assert.ThrowsAsync<WalPipelineException>(() => harness.Running.WaitAsync(TimeSpan.FromSeconds(60)));
        await Assert.ThrowsAsync<WalPipelineException>(harness.StopAsync);
        return error;
    }

    private static WalPipelineOptions TwoPhaseOptions(PipelineHarness harness, ILoggerFactory logs)
    {
        var options = harness.Options(maxBatchRows: 1000);
        options.TwoPhase = true;
        options.LoggerFactory = logs;
        return options;
    }

    private static PipelineHostProcess StartHost(string connectionString, string slot) =>
        PipelineHostProcess.Start(connectionString, slot, AuditedWorkload.Publication, AuditedWorkload.Table, AuditedWorkload.OwnerColumn, maxBatchRows: 500);

    private static string LargeInsert(int from, int to) => string.Create(CultureInfo.InvariantCulture,
        $"INSERT INTO audited_orders (id, user_id) SELECT g, 'u' || (g % 8) FROM generate_series({from}, {to}) g");

    /// <summary>The 32-bit xid of the open transaction on <paramref name="connection"/>: its spill file's name.</summary>
    private static async Task<long> XidAsync(NpgsqlConnection connection)
    {
        await using var command = new NpgsqlCommand("SELECT txid_current() % 4294967296", connection);
        return (long)(await command.ExecuteScalarAsync())!;
    }

    private static long Size(string file)
    {
        try
        {
            return new FileInfo(file).Length;
        }
        catch (FileNotFoundException)
        {
            return 0;
        }
    }

    /// <summary>Flips one bit at <paramref name="offset"/> of <paramref name="file"/>, as a bad disk or another writer would.</summary>
    private static void FlipByte(string file, long offset)
    {
        using var stream = new FileStream(file, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite);
        stream.Position = offset;
        var value = stream.ReadByte();
        stream.Position = offset;
        stream.WriteByte((byte)(value ^ 0x01));
    }

    /// <summary>The records of a stored chunk without the header (<paramref name="skip"/> bytes) and the frames.</summary>
    private static byte[] Unframed(byte[] chunk, int skip)
    {
        var records = new List<byte>();
        for (var at = skip; at < chunk.Length;)
        {
            var length = BinaryPrimitives.ReadInt32LittleEndian(chunk.AsSpan(at));
            records.AddRange(chunk.AsSpan(at + SpillFormat.FrameBytes, length).ToArray());
            at += SpillFormat.FrameBytes + length;
        }
        return [.. records];
    }

    /// <summary>Waits until the prepared transactions table holds exactly <paramref name="chunks"/> rows.</summary>
    private static async Task WaitForPreparedAsync(PipelineHarness harness, long chunks)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (await harness.ScalarAsync<long>("SELECT count(*) FROM sync_prepared_transactions") != chunks)
        {
            if (harness.Running.IsFaulted)
                await harness.Running;
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"sync_prepared_transactions did not reach {chunks} rows in 60 s.");
            await Task.Delay(20);
        }
    }

    [GeneratedRegex(@"synchro-pipeline skip --lsn (\S+) ")]
    private static partial Regex SkipCommand();
}
