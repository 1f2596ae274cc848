namespace Synchro.Pipeline.Decoding.Spill;

/// <summary>
/// Spilled records that cannot be trusted: a checksum that does not match, a frame or record cut short, a header of
/// another format or of an unknown version.
/// </summary>
/// <remarks>
/// An <see cref="IOException"/> on purpose: a local spill file only ever holds changes the server sends again on the next
/// connection (the persisted position lies before the transaction), so the run loop treats it as it treats a lost
/// connection — reconnect, empty the spill directory, read the transaction again. Records stored in
/// <c>sync_prepared_transactions</c> are not sent again once the position passed their PREPARE: the writer catches this
/// there and stops with what to do instead.
/// </remarks>
internal sealed class SpillDamagedException(string source, long offset, string problem)
    : IOException($"The spilled changes in {source} are damaged at byte {offset}: {problem}.")
{
    /// <summary>The file or the stored rows, for messages.</summary>
    public string Location { get; } = source;

    /// <summary>Where in the stream (or the stored piece) the damage was found.</summary>
    public long Offset { get; } = offset;

    /// <summary>What is wrong, without the source and offset.</summary>
    public string Problem { get; } = problem;

    /// <summary>Set when the records are sound but of a format version newer than this build reads.</summary>
    public uint? NewerVersion { get; init; }
}
