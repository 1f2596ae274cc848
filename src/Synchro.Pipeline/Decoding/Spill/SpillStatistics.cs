namespace Synchro.Pipeline.Decoding.Spill;

/// <summary>What the spill store and the replay of spilled transactions did; updated by the decoder thread, read from any.</summary>
internal sealed class SpillStatistics
{
    private long _bytesSpilled;
    private long _largestFile;
    private int _files;
    private int _largestReplayBatch;
    private int _replayedTransactions;
    private int _damaged;

    /// <summary>Bytes written to spill files in total.</summary>
    public long BytesSpilled => Volatile.Read(ref _bytesSpilled);

    /// <summary>The largest size a spill file reached.</summary>
    public long LargestFileBytes => Volatile.Read(ref _largestFile);

    /// <summary>Spill files created.</summary>
    public int FilesCreated => Volatile.Read(ref _files);

    /// <summary>The most changes one batch held while a spilled transaction was replayed.</summary>
    public int LargestReplayBatch => Volatile.Read(ref _largestReplayBatch);

    /// <summary>Spilled transactions replayed into the changelog at their commit.</summary>
    public int ReplayedTransactions => Volatile.Read(ref _replayedTransactions);

    /// <summary>Spill files found damaged when read back.</summary>
    public int DamagedFiles => Volatile.Read(ref _damaged);

    internal void Damaged() => Volatile.Write(ref _damaged, _damaged + 1);

    internal void Spilled(long bytes, long fileSize)
    {
        Volatile.Write(ref _bytesSpilled, _bytesSpilled + bytes);
        if (fileSize > _largestFile)
            Volatile.Write(ref _largestFile, fileSize);
    }

    internal void FileCreated() => Volatile.Write(ref _files, _files + 1);

    internal void ReplayBatch(int changes)
    {
        if (changes > _largestReplayBatch)
            Volatile.Write(ref _largestReplayBatch, changes);
    }

    internal void Replayed() => Volatile.Write(ref _replayedTransactions, _replayedTransactions + 1);
}
