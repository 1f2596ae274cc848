using System.Globalization;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Synchro.Pipeline.Decoding.Items;
using Synchro.Pipeline.Registry;
using Synchro.Pipeline.Protocol.Messages;

namespace Synchro.Pipeline.Decoding.Spill;

/// <summary>
/// The decoded changes of transactions the server sends before they end — streamed in-progress transactions and
/// prepared ones — kept on local disk, one file per top-level transaction, until the transaction's outcome arrives.
/// </summary>
/// <remarks>
/// <para>
/// Why spill instead of writing into an open changelog transaction: the changelog must stay in commit order
/// (invariant 3 of docs/architecture.md), and a smaller transaction that commits while a large one is still streaming must get the lower
/// <c>seq</c>s. Holding the large one's rows back in a file keeps every write in commit order and every database
/// transaction short, and a stream abort costs a file delete instead of a rollback of written rows.
/// </para>
/// <para>
/// Privacy: the slot's directory is private to the process's user (<see cref="PrivateDirectory"/>: mode 0700, ours, not a
/// link) and each file is created new with mode 0600, so no other local user can read the row data in it or plant
/// records; each record carries a checksum (<see cref="SpillFormat"/>), so damage is found before anything is decoded.
/// The open files together may hold at most <c>maxBytes</c> (<see cref="WalPipelineOptions.MaxSpillBytes"/>).
/// </para>
/// <para>
/// Lifetime: one store per replication connection. The slot's directory is emptied when the store opens, because the
/// server re-sends every transaction that was not applied (from the slot's restart point) on each new connection;
/// nothing in it needs to survive a restart. Invariant: a file holds exactly the changes received so far of its
/// transaction that no abort removed; a subtransaction's changes are the file's tail from the offset of its first
/// change (changes are streamed in WAL order, and a rolled-back savepoint's changes all follow its start).
/// Used by the decoder thread only: a streamed transaction's file is read back at its commit (<see cref="OpenReplay"/>),
/// a prepared one's at its PREPARE, in pieces the writer stores (<see cref="OpenChunks"/>); either way the file is
/// deleted once read.
/// </para>
/// </remarks>
internal sealed partial class SpillStore : IDisposable
{
    // Each open file buffers this much before writing; several transactions may stream at once.
    private const int FileBufferBytes = 64 * 1024;

    private const UnixFileMode OwnerReadWrite = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    private readonly Dictionary<uint, SpillFile> _files = [];
    private readonly BatchLimits _chunkLimits;
    private readonly long _maxBytes;

    // The bytes the open files hold (what the cap limits).
    private long _bytes;

    /// <param name="directory">This slot's spill directory: made private to this user (<see cref="PrivateDirectory"/>), then emptied.</param>
    /// <param name="registry">The tables, to read records back.</param>
    /// <param name="statistics">What the store did, across connections.</param>
    /// <param name="chunkLimits">How many changes and bytes a piece of a prepared transaction holds at most, a change's records past (<see cref="OpenChunks"/>).</param>
    /// <param name="maxBytes">The most the open files may hold together; 0 for no cap.</param>
    /// <param name="privateParent">Whether the directory's parent is the pipeline's own (the default root under the temporary directory), to be made private too.</param>
    /// <param name="logger">For what was found in the directory.</param>
    /// <exception cref="WalPipelineConfigurationException">The directory, or its parent, belongs to another user, is a link, or lets others replace it.</exception>
    /// <exception cref="WalPipelineException">The directory could not be created or emptied.</exception>
    public SpillStore(string directory, TableRegistry registry, SpillStatistics statistics, BatchLimits chunkLimits,
        long maxBytes = 0, bool privateParent = false, ILogger? logger = null)
    {
        _chunkLimits = chunkLimits;
        _maxBytes = maxBytes;
        Directory = directory;
        Registry = registry;
        Statistics = statistics;
        logger ??= NullLogger.Instance;
        try
        {
            var prepared = PrivateDirectory.Prepare(directory, privateParent);
            foreach (var (path, mode) in prepared.Tightened)
                LogDirectoryTightened(logger, path, PrivateDirectory.Octal(mode));
            var (files, bytes) = Empty(directory);
            if (files > 0)
                LogLeftFilesRemoved(logger, files, bytes, directory);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw Failed("prepare the spill directory", directory, e);
        }
        catch (PlatformNotSupportedException e)
        {
            throw new WalPipelineConfigurationException(
                $"The spill directory {directory} cannot be checked to be private on this system ({e.Message}). Streamed and prepared transactions need it: "
                + $"turn {nameof(WalPipelineOptions.StreamLargeTransactions)} and {nameof(WalPipelineOptions.TwoPhase)} off, or run on a supported system.", e);
        }
    }

    /// <summary>Deletes everything in <paramref name="directory"/> (links themselves, never what they point to); returns the files and bytes removed.</summary>
    private static (int Files, long Bytes) Empty(string directory)
    {
        var (files, bytes) = (0, 0L);
        foreach (var entry in new DirectoryInfo(directory).EnumerateFileSystemInfos())
        {
            if (entry is DirectoryInfo { LinkTarget: null } child)
            {
                child.Delete(recursive: true);
                continue;
            }
            if (entry is FileInfo { LinkTarget: null } file)
                bytes += file.Length;
            entry.Delete();
            files++;
        }
        return (files, bytes);
    }

    /// <summary>This slot's spill directory.</summary>
    public string Directory { get; }

    public TableRegistry Registry { get; }

    public SpillStatistics Statistics { get; }

    public int OpenFiles => _files.Count;

    /// <summary>What the open files hold together, buffered bytes included: what <c>maxBytes</c> caps.</summary>
    public long Bytes => _bytes;

    /// <summary>Appends the changes of <paramref name="staging"/> to <paramref name="xid"/>'s file; <paramref name="subXid"/> is the subtransaction that made them, or 0 / <paramref name="xid"/> for the top level.</summary>
    public void Append(uint xid, uint subXid, ChangeBatch staging)
    {
        if (staging.Count > 0)
            Append(xid, subXid, staging.Count, static (writer, batch) => writer.Append(batch), staging);
    }

    /// <summary>Appends a TRUNCATE of <paramref name="tables"/> to <paramref name="xid"/>'s file.</summary>
    public void AppendTruncate(uint xid, uint subXid, IReadOnlyList<TruncatedTable> tables, TruncateOptions options)
        => Append(xid, subXid, 0, (writer, _) => writer.AppendTruncate(tables, options), (ChangeBatch?)null);

    private void Append<T>(uint xid, uint subXid, int changes, Func<SpillRecordWriter, T, long> append, T state)
    {
        var file = Get(xid);
        try
        {
            if (subXid != 0 && subXid != xid)
                file.SubtransactionStarts.TryAdd(subXid, file.Writer.Position);
            var written = append(file.Writer, state);
            _bytes += written;
            Statistics.Spilled(written, file.Writer.Position);
            if (_maxBytes > 0 && _bytes > _maxBytes)
                throw CapReached(xid, file);
            // Invariant: a chunk boundary lies between two appends, so every piece holds whole records.
            file.ChangesSinceBoundary += changes;
            if (file.ChangesSinceBoundary >= _chunkLimits.MaxRows || file.Writer.Position - file.LastBoundary >= _chunkLimits.MaxBytes)
            {
                file.Boundaries.Add(file.Writer.Position);
                file.ChangesSinceBoundary = 0;
            }
        }
        catch (IOException e)
        {
            throw Failed("write", file.Path, e);
        }
    }

    /// <summary>A subtransaction rolled back: its changes (and those of subtransactions begun after it) leave the file.</summary>
    public void AbortSubtransaction(uint xid, uint subXid)
    {
        if (!_files.TryGetValue(xid, out var file) || !file.SubtransactionStarts.TryGetValue(subXid, out var start))
            return;
        try
        {
            file.Stream.Flush();
            _bytes -= file.Stream.Length - start;
            file.Stream.SetLength(start);
            file.Stream.Position = start;
        }
        catch (IOException e)
        {
            throw Failed("truncate", file.Path, e);
        }
        file.Writer.Forget(start);
        file.Boundaries.RemoveAll(boundary => boundary > start);
        // Only a bound: the piece now being filled may count a few rolled-back changes.
        file.ChangesSinceBoundary = 0;
        foreach (var (sub, offset) in file.SubtransactionStarts)
        {
            if (offset >= start)
                file.SubtransactionStarts.Remove(sub);
        }
    }

    /// <summary>The transaction rolled back, or its changes were applied: its file goes.</summary>
    public void Delete(uint xid)
    {
        if (_files.Remove(xid, out var file))
        {
            _bytes -= file.Writer.Position;
            file.Dispose();
        }
    }

    /// <summary>Reads <paramref name="xid"/>'s changes from the start; null when it has none. The caller disposes it, which deletes the file.</summary>
    public SpillReplay? OpenReplay(uint xid)
        => Rewind(xid) is { } file ? new SpillReplay(file, new SpillRecordReader(file.Stream, Registry, file.Path)) : null;

    /// <summary>
    /// Reads <paramref name="xid"/>'s file back in pieces of whole records (at most the chunk limits each) for storing;
    /// null when it has no changes. The caller disposes it, which deletes the file.
    /// </summary>
    public SpillChunks? OpenChunks(uint xid) => Rewind(xid) is { } file ? new SpillChunks(file) : null;

    /// <summary>Takes <paramref name="xid"/>'s file out of the store, flushed and rewound for reading; null when it has no records.</summary>
    private SpillFile? Rewind(uint xid)
    {
        if (!_files.Remove(xid, out var file))
            return null;
        _bytes -= file.Writer.Position;
        // Rolled-back subtransactions may have left nothing but the header.
        if (file.Writer.Position <= SpillFormat.HeaderBytes)
        {
            file.Dispose();
            return null;
        }
        try
        {
            file.Stream.Flush();
            file.Stream.Position = 0;
        }
        catch (IOException e)
        {
            file.Dispose();
            throw Failed("read", file.Path, e);
        }
        return file;
    }

    public void Dispose()
    {
        foreach (var file in _files.Values)
            file.Dispose();
        _files.Clear();
        _bytes = 0;
    }

    /// <summary>The open files would hold more than the cap: the run stops, and the transaction is sent again at the next start.</summary>
    private WalPipelineException CapReached(uint xid, SpillFile file)
        => new($"The source transaction with xid {xid.ToString(CultureInfo.InvariantCulture)} needs more local spill space than {nameof(WalPipelineOptions.MaxSpillBytes)} allows "
            + $"({Size(_maxBytes)}): its file {file.Path} holds {Size(file.Writer.Position)}, the open spill files of this slot {Size(_bytes)} in all. "
            + "None of its changes reached the changelog, and the server sends the transaction again at the next start. "
            + $"Raise {nameof(WalPipelineOptions.MaxSpillBytes)} (0 turns the cap off) where the disk, or the memory of a tmpfs, behind "
            + $"{nameof(WalPipelineOptions.SpillDirectory)} has the room, or point {nameof(WalPipelineOptions.SpillDirectory)} at a larger disk; for a streamed "
            + $"transaction, turning {nameof(WalPipelineOptions.StreamLargeTransactions)} off also works: the server then keeps large transactions in its own "
            + "spill files (pg_replslot) until they commit.");

    private static string Size(long bytes) => string.Create(CultureInfo.InvariantCulture, $"{bytes:N0} bytes");

    internal static WalPipelineException Failed(string what, string path, Exception error)
        => new($"Could not {what} the spill file {path} ({error.Message}). The pipeline keeps the changes of large and prepared "
            + "transactions there until they end: free disk space or point SpillDirectory at a writable disk, then restart.", error);

    private SpillFile Get(uint xid)
    {
        if (_files.TryGetValue(xid, out var file))
            return file;
        var path = Path.Combine(Directory, xid.ToString(CultureInfo.InvariantCulture) + ".spill");
        try
        {
            // A new file (never one found there, nor a link's target), readable by this user only.
            var options = new FileStreamOptions
            {
                Mode = FileMode.CreateNew,
                Access = FileAccess.ReadWrite,
                Share = FileShare.Read,
                BufferSize = FileBufferBytes,
                Options = FileOptions.SequentialScan,
            };
            if (!OperatingSystem.IsWindows())
                options.UnixCreateMode = OwnerReadWrite;
            file = new SpillFile(path, new FileStream(path, options));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw Failed("create", path, e);
        }
        _files.Add(xid, file);
        _bytes += file.Writer.Position;
        Statistics.FileCreated();
        return file;
    }

    [LoggerMessage(EventId = Diagnostics.EventIds.SpillFilesLeftRemoved, Level = LogLevel.Information,
        Message = "Removed {Files} spill file(s) ({Bytes} bytes) that an earlier connection left in {Directory}: the server sends their transactions again")]
    private static partial void LogLeftFilesRemoved(ILogger logger, int files, long bytes, string directory);

    [LoggerMessage(EventId = Diagnostics.EventIds.SpillDirectoryTightened, Level = LogLevel.Warning,
        Message = "The spill directory {Directory} was open to other users (mode {Mode}); it is now 0700. Files spilled there before may have been read by them")]
    private static partial void LogDirectoryTightened(ILogger logger, string directory, string mode);
}

/// <summary>One transaction's spill file.</summary>
internal sealed class SpillFile(string path, FileStream stream) : IDisposable
{
    public string Path { get; } = path;

    public FileStream Stream { get; } = stream;

    public SpillRecordWriter Writer { get; } = new(stream);

    /// <summary>Per subtransaction: the offset of its first change.</summary>
    public Dictionary<uint, long> SubtransactionStarts { get; } = [];

    /// <summary>Offsets, ascending, where a piece of the file ends and the next begins (<see cref="SpillStore.OpenChunks"/>).</summary>
    public List<long> Boundaries { get; } = [];

    public long LastBoundary => Boundaries.Count == 0 ? 0 : Boundaries[^1];

    /// <summary>Changes appended since the last boundary.</summary>
    public int ChangesSinceBoundary { get; set; }

    public void Dispose()
    {
        Stream.Dispose();
        File.Delete(Path);
    }
}

/// <summary>A spilled prepared transaction read back in pieces of whole records; disposing it deletes the file.</summary>
internal sealed class SpillChunks(SpillFile file) : IDisposable
{
    private int _next;

    /// <summary>The file, for messages.</summary>
    public string Path => file.Path;

    /// <summary>Reads the next piece; false after the last.</summary>
    public bool TryRead(out byte[] chunk)
    {
        var start = file.Stream.Position;
        var end = _next < file.Boundaries.Count ? file.Boundaries[_next] : file.Stream.Length;
        if (start >= end)
        {
            chunk = [];
            return false;
        }
        _next++;
        chunk = new byte[end - start];
        try
        {
            file.Stream.ReadExactly(chunk);
        }
        catch (IOException e)
        {
            throw SpillStore.Failed("read", file.Path, e);
        }
        // Stored as they are, so checked now: once stored with the position past the PREPARE, the server never sends them again.
        SpillFormat.Verify(chunk, withHeader: start == 0, file.Path, start);
        return true;
    }

    public void Dispose() => file.Dispose();
}

/// <summary>A spilled transaction read back; disposing it deletes the file.</summary>
internal sealed class SpillReplay(SpillFile file, SpillRecordReader reader) : IDisposable
{
    public SpillRecordReader Reader { get; } = reader;

    public void Dispose() => file.Dispose();
}
