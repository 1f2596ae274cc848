using Synchro.Pipeline.Registry;

namespace Synchro.Pipeline.Decoding;

/// <summary>
/// The columns of a registered table's rows as a change carries them: the names and type OIDs of its referenced columns
/// and, for a table whose buckets a SQL function decides, of every column.
/// </summary>
/// <remarks>
/// Made once per Relation message (or per table for a replay), shared by every change of that relation, so a row costs no
/// allocation. Value layout of a change (<see cref="DecodedChange.FirstValue"/> onwards): the referenced columns; then, when
/// <see cref="FullRow"/>, every column of the row (the new row; the old row for a delete); then, when
/// <see cref="DecodedChange.HasOldRow"/>, every column of the old row.
/// </remarks>
internal sealed class RowLayout
{
    public RowLayout(TableRegistration table, string[] names, uint[] typeOids, int[] referencedPositions, bool fullRow)
    {
        Table = table;
        Names = names;
        TypeOids = typeOids;
        ReferencedTypeOids = referencedPositions.Select(p => typeOids[p]).ToArray();
        FullRow = fullRow;
    }

    public TableRegistration Table { get; }

    /// <summary>Every column's name, in tuple order.</summary>
    public string[] Names { get; }

    /// <summary>Every column's type OID, in tuple order.</summary>
    public uint[] TypeOids { get; }

    /// <summary>The type OIDs of <see cref="TableRegistration.ReferencedColumns"/>, in their order.</summary>
    public uint[] ReferencedTypeOids { get; }

    /// <summary>Whether changes carry every column (a SQL function rule, or <see cref="TableRegistration.DecodeAllColumns"/>), not just the referenced ones.</summary>
    public bool FullRow { get; }

    /// <summary>The position of <paramref name="column"/> in <see cref="Names"/>, or -1.</summary>
    public int IndexOf(string column) => Array.IndexOf(Names, column);
}
