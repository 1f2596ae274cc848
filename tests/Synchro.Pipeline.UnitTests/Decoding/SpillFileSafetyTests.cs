using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using System.Runtime.Versioning;
using System.Text;
using Microsoft.Extensions.Logging;
using Synchro.Pipeline.Decoding;
using Synchro.Pipeline.Decoding.Spill;
using Synchro.Pipeline.Diagnostics;
using Synchro.Pipeline.Protocol;
using Synchro.Pipeline.Registry;

namespace Synchro.Pipeline.Tests.Decoding;

/// <summary>
/// Spill files are private, bounded and verified: the directory is the user's own with mode 0700 (another user's, a
/// link, or a parent others can write into is refused), files are 0600, the open files are capped, and a flipped byte, a
/// foreign file or a wrong version is refused with a message that says which.
/// </summary>
[UnsupportedOSPlatform("windows")]
public sealed class SpillFileSafetyTests : IDisposable
{
    private const UnixFileMode OwnerOnly = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
    private static readonly TableRegistration s_orders = new("orders") { OwnerColumn = "user_id" };
    private static readonly TableRegistry s_registry = new TableRegistry().Add(s_orders);
    private static readonly BatchLimits s_chunkLimits = new(10_000, 1 << 20);

    // A parent of our own for each test, 0755 like a home directory, so nothing here depends on /tmp's state.
    private readonly string _parent = Directory.CreateTempSubdirectory("synchro-spill-safety-").FullName;
    private readonly ChangeBatchPool _pool = new();

    public SpillFileSafetyTests() => File.SetUnixFileMode(_parent, OwnerOnly | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);

    private string SlotDirectory => Path.Combine(_parent, "slot-abc");

    [Fact]
    public void The_directory_is_created_0700_and_each_file_0600()
    {
        var root = Path.Combine(_parent, "root");
        var slot = Path.Combine(root, "slot-abc");
        using var store = new SpillStore(slot, s_registry, new SpillStatistics(), s_chunkLimits, privateParent: true);
        Append(store, 7, "a");

        Assert.Equal(OwnerOnly, File.GetUnixFileMode(root));
        Assert.Equal(OwnerOnly, File.GetUnixFileMode(slot));
        var file = Assert.Single(Directory.GetFiles(slot));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(file));
        Assert.Equal(UnixFileStatus.EffectiveUserId, UnixFileStatus.Read(file)!.Value.Owner);
    }

    [Fact]
    public void A_directory_of_ours_open_to_others_is_tightened_to_0700_and_emptied()
    {
        Directory.CreateDirectory(SlotDirectory);
        File.SetUnixFileMode(SlotDirectory, (UnixFileMode)Convert.ToInt32("755", 8));
        File.WriteAllText(Path.Combine(SlotDirectory, "12.spill"), "left by a killed run");
        var logs = new ListLogger();

        using (new SpillStore(SlotDirectory, s_registry, new SpillStatistics(), s_chunkLimits, logger: logs))
        {
        }

        Assert.Equal(OwnerOnly, File.GetUnixFileMode(SlotDirectory));
        Assert.Empty(Directory.GetFileSystemEntries(SlotDirectory));
        Assert.Contains(logs.Entries, e => e.Id == EventIds.SpillDirectoryTightened && e.Message.Contains("mode 0755", StringComparison.Ordinal));
        Assert.Contains(logs.Entries, e => e.Id == EventIds.SpillFilesLeftRemoved && e.Message.Contains("Removed 1 spill file(s) (20 bytes)", StringComparison.Ordinal));
    }

    [Fact]
    public void A_symbolic_link_in_place_of_the_directory_is_refused_and_its_target_left_alone()
    {
        var elsewhere = Path.Combine(_parent, "elsewhere");
        Directory.CreateDirectory(elsewhere);
        File.WriteAllText(Path.Combine(elsewhere, "precious"), "not the pipeline's");
        Directory.CreateSymbolicLink(SlotDirectory, elsewhere);

        var error = Assert.Throws<WalPipelineConfigurationException>(() => new SpillStore(SlotDirectory, s_registry, new SpillStatistics(), s_chunkLimits));

        Assert.Contains($"The spill directory {SlotDirectory} is a symbolic link", error.Message, StringComparison.Ordinal);
        Assert.True(File.Exists(Path.Combine(elsewhere, "precious")), "nothing was deleted through the link");
    }

    [Fact]
    public void A_symbolic_link_in_place_of_the_pipelines_own_root_is_refused()
    {
        var elsewhere = Path.Combine(_parent, "elsewhere");
        Directory.CreateDirectory(elsewhere);
        var root = Path.Combine(_parent, "root");
        Directory.CreateSymbolicLink(root, elsewhere);

        var error = Assert.Throws<WalPipelineConfigurationException>(() => new SpillStore(Path.Combine(root, "slot-abc"), s_registry, new SpillStatistics(), s_chunkLimits, privateParent: true));

        Assert.Contains($"{root} is a symbolic link", error.Message, StringComparison.Ordinal);
        Assert.Empty(Directory.GetFileSystemEntries(elsewhere));
    }

    [Fact]
    public void A_directory_that_belongs_to_another_user_is_refused_with_both_uids()
    {
        Directory.CreateDirectory(SlotDirectory, OwnerOnly);
        var me = UnixFileStatus.EffectiveUserId;
        const uint Other = 54321;

        // As that other user, the directory this process's user made is someone else's.
        var error = Assert.Throws<WalPipelineConfigurationException>(() => PrivateDirectory.Prepare(SlotDirectory, privateParent: false, owner: Other));

        Assert.Contains($"belongs to uid {me}, not to this process's user (uid {Other})", error.Message, StringComparison.Ordinal);
        Assert.Contains("set SpillDirectory to a directory of this user's own", error.Message, StringComparison.Ordinal);
        if (me == 0)
        {
            // Root can make the real case: a directory another user created first.
            Chown(SlotDirectory, Other);
            var real = Assert.Throws<WalPipelineConfigurationException>(() => new SpillStore(SlotDirectory, s_registry, new SpillStatistics(), s_chunkLimits));
            Assert.Contains($"belongs to uid {Other}, not to this process's user (uid 0)", real.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void The_owner_read_is_the_one_the_system_reports()
    {
        Assert.Equal(uint.Parse(Run("id", "-u"), CultureInfo.InvariantCulture), UnixFileStatus.EffectiveUserId);
        var status = UnixFileStatus.Read(_parent)!.Value;
        Assert.Equal(uint.Parse(Run("stat", "-c", "%u", _parent), CultureInfo.InvariantCulture), status.Owner);
        Assert.True(status.IsDirectory);
        Assert.False(status.IsSymbolicLink);
        Assert.Equal(0u, UnixFileStatus.Read("/")!.Value.Owner);
        Assert.Null(UnixFileStatus.Read(Path.Combine(_parent, "nothing-here")));
    }

    [Fact]
    public void A_chosen_parent_others_can_write_into_is_refused_unless_it_has_the_sticky_bit()
    {
        File.SetUnixFileMode(_parent, (UnixFileMode)Convert.ToInt32("777", 8));

        var error = Assert.Throws<WalPipelineConfigurationException>(() => new SpillStore(SlotDirectory, s_registry, new SpillStatistics(), s_chunkLimits));
        Assert.Contains($"{_parent} is writable by other users (mode 0777) without the sticky bit", error.Message, StringComparison.Ordinal);
        Assert.False(Directory.Exists(SlotDirectory));

        File.SetUnixFileMode(_parent, (UnixFileMode)Convert.ToInt32("1777", 8));
        using var store = new SpillStore(SlotDirectory, s_registry, new SpillStatistics(), s_chunkLimits);
        Assert.Equal(OwnerOnly, File.GetUnixFileMode(SlotDirectory));
    }

    [Fact]
    public void The_cap_counts_every_open_file_and_names_the_transaction_the_sizes_and_the_option()
    {
        using var store = new SpillStore(SlotDirectory, s_registry, new SpillStatistics(), s_chunkLimits, maxBytes: 4096);
        for (var i = 0; i < 40; i++)
            Append(store, 1, $"one-{i}");
        store.Delete(1);
        // The space of a deleted file is free again: 40 changes fit once more, in two files.
        for (var i = 0; i < 20; i++)
        {
            Append(store, 2, $"two-{i}");
            Append(store, 3, $"three-{i}");
        }

        var error = Assert.Throws<WalPipelineException>(() =>
        {
            for (var i = 0; i < 1000; i++)
                Append(store, 3, $"three-more-{i}");
        });

        Assert.StartsWith("The source transaction with xid 3 needs more local spill space than MaxSpillBytes allows (4,096 bytes)", error.Message, StringComparison.Ordinal);
        Assert.Contains("the server sends the transaction again at the next start", error.Message, StringComparison.Ordinal);
        Assert.Contains("Raise MaxSpillBytes", error.Message, StringComparison.Ordinal);
        Assert.Contains("StreamLargeTransactions off", error.Message, StringComparison.Ordinal);
        // Over by at most the one append that crossed the cap.
        Assert.InRange(store.Bytes, 4097, 4096 + 100);
        Assert.Equal(2, store.OpenFiles);
    }

    [Fact]
    public void A_flipped_byte_fails_the_checksum_with_the_file_and_offset_named()
    {
        var bytes = Spilled("a", "b", "c");
        // A byte inside the second change's value.
        var at = Encoding.ASCII.GetString(bytes).IndexOf("o-b", StringComparison.Ordinal);
        bytes[at + 2] ^= 0x01;

        var error = Assert.Throws<SpillDamagedException>(() => ReadAll(bytes, "/spill/9.spill"));

        Assert.StartsWith("The spilled changes in /spill/9.spill are damaged at byte ", error.Message, StringComparison.Ordinal);
        Assert.Contains("the checksum of a record of", error.Message, StringComparison.Ordinal);
        Assert.Contains("does not match", error.Message, StringComparison.Ordinal);
        Assert.True(error.Offset > SpillFormat.HeaderBytes && error.Offset < at, $"offset {error.Offset}, flipped byte at {at}");
    }

    [Fact]
    public void A_flipped_byte_in_a_spill_file_is_found_when_it_is_read_back_and_when_its_pieces_are_taken()
    {
        using var store = new SpillStore(SlotDirectory, s_registry, new SpillStatistics(), new BatchLimits(MaxRows: 2, MaxBytes: 1 << 20));
        for (var i = 0; i < 6; i++)
        {
            Append(store, 5, $"replayed-{i}");
            Append(store, 6, $"prepared-{i}");
        }
        var replayed = Path.Combine(SlotDirectory, "5.spill");
        var prepared = Path.Combine(SlotDirectory, "6.spill");
        using (var replay = store.OpenReplay(5)!)
        {
            Flip(replayed, "replayed-4");
            var batch = _pool.Rent();
            var error = Assert.Throws<SpillDamagedException>(() =>
            {
                while (replay.Reader.TryRead(batch, out _))
                {
                }
            });
            Assert.Equal(replayed, error.Location);
            Assert.Equal(4, batch.Count);
            batch.Release();
        }
        using var chunks = store.OpenChunks(6)!;
        Flip(prepared, "prepared-3");
        Assert.True(chunks.TryRead(out _));
        var damaged = Assert.Throws<SpillDamagedException>(() => chunks.TryRead(out _));
        Assert.Contains(prepared, damaged.Message, StringComparison.Ordinal);
        Assert.Contains("checksum", damaged.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_stream_of_a_newer_version_is_refused_as_such()
    {
        var bytes = Spilled("a");
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(8), 2);

        var error = Assert.Throws<SpillDamagedException>(() => ReadAll(bytes, "sync_prepared_transactions (gid 'g')", acceptsUnversioned: true));

        Assert.Equal(2u, error.NewerVersion);
        Assert.Contains("they are in spill format version 2, which only a newer version of Synchro.Pipeline reads (this one reads versions 0 to 1)", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_foreign_file_or_one_without_a_header_is_refused()
    {
        var foreign = Assert.Throws<SpillDamagedException>(() => ReadAll(Encoding.ASCII.GetBytes("#!/bin/sh\nrm -rf ~\n"), "/spill/1.spill"));
        Assert.Contains("it does not start with the spill format's header (found 23212F62696E2F73); it was not written by this pipeline", foreign.Message, StringComparison.Ordinal);

        var unversioned = Unframed(Spilled("a"));
        var local = Assert.Throws<SpillDamagedException>(() => ReadAll(unversioned, "/spill/2.spill"));
        Assert.Contains("it has no header: it was not written by this version of the pipeline", local.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Rows_stored_in_the_unversioned_format_of_earlier_versions_are_still_read()
    {
        var unversioned = Unframed(Spilled("a", "b"));

        var reader = new SpillRecordReader(new MemoryStream(unversioned), s_registry, "stored", acceptsUnversioned: true);
        var batch = _pool.Rent();
        while (reader.TryRead(batch, out _))
        {
        }

        Assert.Equal(0u, reader.FormatVersion);
        Assert.Equal(["o-a", "o-b"], Enumerable.Range(0, batch.Count).Select(batch.RecordId));
        batch.Release();
    }

    [Fact]
    public void The_checksum_is_CRC_32C()
    {
        Assert.Equal(0xE3069283u, ~SpillFormat.Crc32C(uint.MaxValue, "123456789"u8));
        Assert.Equal(0u, ~SpillFormat.Crc32C(uint.MaxValue, []));
        var long_ = Enumerable.Range(0, 1000).Select(i => (byte)i).ToArray();
        var bytewise = long_.Aggregate(uint.MaxValue, (crc, b) => System.Numerics.BitOperations.Crc32C(crc, b));
        Assert.Equal(bytewise, SpillFormat.Crc32C(uint.MaxValue, long_));
    }

    public void Dispose() => Directory.Delete(_parent, recursive: true);

    private void Append(SpillStore store, uint xid, string id)
    {
        var staging = _pool.Rent();
        Add(staging, id);
        store.Append(xid, xid, staging);
        staging.Release();
    }

    private static void Add(ChangeBatch batch, string id)
    {
        var first = batch.ValueMark.Values;
        batch.AddText(Encoding.UTF8.GetBytes("o-" + id));
        batch.AddText("alice"u8);
        batch.AddEmpty(TupleValueKind.Null);
        batch.Add(new DecodedChange(s_orders, ChangeOperation.Insert, first));
    }

    /// <summary>A spill stream of one insert per id.</summary>
    private byte[] Spilled(params string[] ids)
    {
        using var stream = new MemoryStream();
        var batch = _pool.Rent();
        foreach (var id in ids)
            Add(batch, id);
        new SpillRecordWriter(stream).Append(batch);
        batch.Release();
        return stream.ToArray();
    }

    /// <summary>The records of a version 1 stream as version 0 stored them: no header, no frames.</summary>
    private static byte[] Unframed(byte[] stream)
    {
        var records = new List<byte>();
        for (var at = SpillFormat.HeaderBytes; at < stream.Length;)
        {
            var length = BinaryPrimitives.ReadInt32LittleEndian(stream.AsSpan(at));
            records.AddRange(stream.AsSpan(at + SpillFormat.FrameBytes, length).ToArray());
            at += SpillFormat.FrameBytes + length;
        }
        return [.. records];
    }

    private ChangeBatch ReadAll(byte[] bytes, string source, bool acceptsUnversioned = false)
    {
        var batch = _pool.Rent();
        var reader = new SpillRecordReader(new MemoryStream(bytes), s_registry, source, acceptsUnversioned);
        while (reader.TryRead(batch, out _))
        {
        }
        return batch;
    }

    /// <summary>Flips one bit of the first occurrence of <paramref name="text"/> in <paramref name="path"/>, as a bad disk would.</summary>
    private static void Flip(string path, string text)
    {
        var bytes = File.ReadAllBytes(path);
        var at = Encoding.ASCII.GetString(bytes).IndexOf(text, StringComparison.Ordinal);
        Assert.True(at >= 0, $"{text} is not in {path}");
        using var file = new FileStream(path, FileMode.Open, FileAccess.Write, FileShare.ReadWrite);
        file.Position = at;
        file.WriteByte((byte)(bytes[at] ^ 0x20));
    }

    private static void Chown(string path, uint uid) => Run("chown", uid.ToString(CultureInfo.InvariantCulture), path);

    private static string Run(string program, params string[] arguments)
    {
        using var process = Process.Start(new ProcessStartInfo(program, arguments) { RedirectStandardOutput = true, RedirectStandardError = true })!;
        var output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        Assert.True(process.ExitCode == 0, $"{program} {string.Join(' ', arguments)} exited with {process.ExitCode}: {process.StandardError.ReadToEnd()}");
        return output.Trim();
    }

    /// <summary>Keeps every event logged.</summary>
    private sealed class ListLogger : ILogger
    {
        public List<(int Id, string Message)> Entries { get; } = [];

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            => Entries.Add((eventId.Id, formatter(state, exception)));
    }
}
