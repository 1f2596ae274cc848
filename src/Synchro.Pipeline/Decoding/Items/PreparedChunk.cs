namespace Synchro.Pipeline.Decoding.Items;

/// <summary>
/// A piece of a prepared transaction's decoded changes, in the spill format, to be stored until its outcome
/// arrives. The chunks of one transaction come in order (<see cref="Number"/> from 0), each whole records, and are
/// followed by its <see cref="PreparedStep"/> of kind <see cref="PreparedStepKind.Prepare"/>.
/// </summary>
internal sealed class PreparedChunk(string gid, int number, byte[] records) : DecodedItem
{
    public string Gid { get; } = gid;

    public int Number { get; } = number;

    /// <summary>Spill records; read back with one <see cref="Spill.SpillRecordReader"/> continued across the chunks in order.</summary>
    public byte[] Records { get; } = records;
}
