using System.Globalization;
using Synchro.Pipeline.Registry;

namespace Synchro.Pipeline.Decoding.Spill;

/// <summary>
/// The decoded changes of transactions the server sends before they end — streamed in-progress transactions and
/// prepared ones — kept on local disk, one file per top-level transaction, until the transaction's outcome arrives.
/// </summary>
/// <remarks>
/// <para>
/// Why spill instead of writing into an open changelog transaction: the changelog must stay in commit order
/// (invariant 3), and a smaller transaction that commits while a large one is still streaming must get the lower
/// <c>seq</c>s. Holding the large one's rows back in a file keeps every write in commit order and every database
/// transaction short, and a stream abort costs a file delete instead of a rollback of written rows.
/// </para>
/// <para>
/// Lifetime: one store per replication connection. The slot's directory is emptied when the store opens, because the
/// server re-sends every transaction that was not applied (from the slot's restart point) on each new connection;
/// nothing in it needs to survive a restart. Invariant: a file holds exactly the changes received so far of its
/// transaction that no abort removed; a subtransaction's changes are the file's tail from the offset of its first
/// change (changes are streamed in WAL order, and a rolled-back savepoint's changes all follow its start).
/// Used by the decoder thread only, except that a prepared transaction's file is handed to the writer
/// (<see cref="Detach"/>), which deletes it.
/// </para>
/// </remarks>
internal sealed class SpillStore : IDisposable
{
    // Each open file buffers this much before writing; several transactions may stream at once.
    private const int FileBufferBytes = 64 * 1024;

    private readonly Dictionary<uint, SpillFile> _files = [];

    public SpillStore(string directory, TableRegistry registry, SpillStatistics statistics)
    {
        Directory = directory;
        Registry = registry;
        Statistics = statistics;
        try
        {
            if (System.IO.Directory.Exists(directory))
                System.IO.Directory.Delete(directory, recursive: true);
            System.IO.Directory.CreateDirectory(directory);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw Failed("prepare the spill directory", directory, e);
        }
    }

    /// <summary>This slot's spill directory.</summary>
    public string Directory { get; }

    public TableRegistry Registry { get; }

    public SpillStatistics Statistics { get; }

    public int OpenFiles => _files.Count;

    /// <summary>Appends the changes of <paramref name="staging"/> to <paramref name="xid"/>'s file; <paramref name="subXid"/> is the subtransaction that made them, or 0 / <paramref name="xid"/> for the top level.</summary>
    public void Append(uint xid, uint subXid, ChangeBatch staging)
    {
        if (staging.Count == 0 && staging.TruncatedTables.Count == 0)
            return;
        var file = Get(xid);
        try
        {
            if (subXid != 0 && subXid != xid)
                file.SubtransactionStarts.TryAdd(subXid, file.Writer.Position);
            var written = file.Writer.Append(staging);
            Statistics.Spilled(written, file.Writer.Position);
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
            file.Stream.SetLength(start);
            file.Stream.Position = start;
        }
        catch (IOException e)
        {
            throw Failed("truncate", file.Path, e);
        }
        file.Writer.Forget(start);
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
            file.Dispose();
    }

    /// <summary>Reads <paramref name="xid"/>'s changes from the start; null when it has none. The caller disposes it, which deletes the file.</summary>
    public SpillReplay? OpenReplay(uint xid)
    {
        if (!_files.Remove(xid, out var file))
            return null;
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
        return new SpillReplay(file, new SpillRecordReader(file.Stream, Registry, file.Path));
    }

    /// <summary>Closes <paramref name="xid"/>'s file and hands it over (its path), or null when it has no changes; the new owner deletes it.</summary>
    public string? Detach(uint xid)
    {
        if (!_files.Remove(xid, out var file))
            return null;
        try
        {
            file.Stream.Flush();
        }
        catch (IOException e)
        {
            file.Dispose();
            throw Failed("write", file.Path, e);
        }
        file.Stream.Dispose();
        return file.Path;
    }

    public void Dispose()
    {
        foreach (var file in _files.Values)
            file.Dispose();
        _files.Clear();
    }

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
            var stream = new FileStream(path, FileMode.Create, FileAccess.ReadWrite, FileShare.Read, FileBufferBytes, FileOptions.SequentialScan);
            file = new SpillFile(path, stream);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw Failed("create", path, e);
        }
        _files.Add(xid, file);
        Statistics.FileCreated();
        return file;
    }
}

/// <summary>One transaction's spill file.</summary>
internal sealed class SpillFile(string path, FileStream stream) : IDisposable
{
    public string Path { get; } = path;

    public FileStream Stream { get; } = stream;

    public SpillRecordWriter Writer { get; } = new(stream);

    /// <summary>Per subtransaction: the offset of its first change.</summary>
    public Dictionary<uint, long> SubtransactionStarts { get; } = [];

    public void Dispose()
    {
        Stream.Dispose();
        File.Delete(Path);
    }
}

/// <summary>A spilled transaction read back; disposing it deletes the file.</summary>
internal sealed class SpillReplay(SpillFile file, SpillRecordReader reader) : IDisposable
{
    public SpillRecordReader Reader { get; } = reader;

    public void Dispose() => file.Dispose();
}
