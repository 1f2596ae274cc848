using System.Text.Unicode;
using Synchro.Pipeline.Protocol;
using Synchro.Pipeline.Registry;

namespace Synchro.Pipeline.Decoding;

/// <summary>Where a registered table's referenced columns sit in its relation's tuples.</summary>
internal sealed partial class RelationMapping
{
    private readonly int[] _positions;
    private readonly int _softDeleteIndex;
    // Binary tuple mode: per referenced column, how its binary values become text; null in text mode.
    private readonly BinaryColumnFormat[]? _formats;

    private RelationMapping(RelationInfo relation, TableRegistration table, int[] positions, BinaryColumnFormat[]? formats, bool fullRow)
    {
        Relation = relation;
        Table = table;
        _positions = positions;
        _formats = formats;
        Layout = new RowLayout(table, relation.Columns.Select(c => c.Name).ToArray(), relation.Columns.Select(c => c.TypeOid).ToArray(), positions, fullRow);
        _softDeleteIndex = table.SoftDeleteColumn is { } softDelete ? table.ReferencedColumnIndex(softDelete) : -1;
    }

    public RelationInfo Relation { get; }

    public TableRegistration Table { get; }

    /// <summary>The names and types of the relation's columns, shared by its changes.</summary>
    public RowLayout Layout { get; }

    /// <summary>The mapping, or null when a referenced column is not in the relation.</summary>
    /// <exception cref="WalPipelineException">Binary tuple mode, and a referenced column's type has no conversion to text.</exception>
    public static RelationMapping? TryCreate(RelationInfo relation, TableRegistration table, bool binary, TableRegistry registry)
    {
        var columns = table.ReferencedColumns;
        var positions = new int[columns.Count];
        for (var i = 0; i < columns.Count; i++)
        {
            positions[i] = FindColumn(relation, columns[i]);
            if (positions[i] < 0)
                return null;
        }
        return new RelationMapping(relation, table, positions, binary ? BinaryFormats(relation, table, positions) : null, table.DecodeAllColumns || registry.BucketFunctionOf(table) is not null);
    }

    /// <summary>Appends the referenced columns' values to <paramref name="batch"/>; returns the index of the first.</summary>
    public int Read(TupleData row, ChangeBatch batch)
    {
        var first = batch.ValueMark.Values;
        for (var i = 0; i < _positions.Length; i++)
        {
            var value = row[_positions[i]];
            switch (value.Kind)
            {
                case TupleValueKind.Text:
                    // Checked here, where the column is known, so the writer's strings cannot fail.
                    if (!Utf8.IsValid(value.Data))
                        throw new WalPipelineException($"Column '{Relation.Columns[_positions[i]].Name}' of {Table} arrived with invalid UTF-8; the database encoding must be UTF8.");
                    batch.AddText(value.Data);
                    break;
                case TupleValueKind.Null or TupleValueKind.UnchangedToast:
                    batch.AddEmpty(value.Kind);
                    break;
                case TupleValueKind.Binary when _formats is not null:
                    if (!batch.AddBinary(_formats[i], value.Data))
                        ThrowBadBinary(i, value.Data.Length);
                    break;
                default:
                    throw new WalPipelineException($"Column '{Relation.Columns[_positions[i]].Name}' of {Table} arrived in binary format, which this pipeline does not request.");
            }
        }
        return first;
    }

    /// <summary>Replaces the id of the change at <paramref name="values"/> with the old row's, when that has it as text.</summary>
    public void ReadOldId(TupleData oldRow, ChangeBatch batch, int values)
    {
        var id = oldRow[_positions[0]];
        if (id.Kind != TupleValueKind.Text)
            return;
        if (!Utf8.IsValid(id.Data))
            throw new WalPipelineException($"Column '{Relation.Columns[_positions[0]].Name}' of {Table} arrived with invalid UTF-8; the database encoding must be UTF8.");
        batch.SetText(values, id.Data);
    }

    /// <summary>
    /// For a table with a function rule: appends every column's value of <paramref name="row"/> (after the referenced ones)
    /// and returns true; otherwise adds nothing and returns false, so other tables pay nothing. Of a key-only old row
    /// (<paramref name="keyOnly"/>), the columns outside the replica identity are stored as not sent (as unchanged TOAST
    /// values), not as the NULLs the server puts there, so nothing takes them for the row's values.
    /// </summary>
    public bool ReadRow(TupleData row, ChangeBatch batch, bool keyOnly = false)
    {
        if (!Layout.FullRow)
            return false;
        var index = 0;
        foreach (var value in row)
        {
            if (keyOnly && !Relation.Columns[index].IsKey)
            {
                batch.AddEmpty(TupleValueKind.UnchangedToast);
                index++;
                continue;
            }
            switch (value.Kind)
            {
                case TupleValueKind.Text:
                    if (!Utf8.IsValid(value.Data))
                        throw new WalPipelineException($"Column '{Relation.Columns[index].Name}' of {Table} arrived with invalid UTF-8; the database encoding must be UTF8.");
                    batch.AddText(value.Data);
                    break;
                case TupleValueKind.Null or TupleValueKind.UnchangedToast:
                    batch.AddEmpty(value.Kind);
                    break;
                default:
                    throw new WalPipelineException($"Column '{Relation.Columns[index].Name}' of {Table} arrived in binary format, which this pipeline does not request.");
            }
            index++;
        }
        return true;
    }

    // An unchanged TOAST value ('u') is never NULL: pgoutput sends it only for a value stored out of line. So the
    // column was and stays non-null, the record was and stays soft-deleted, and the change is a delete — exactly
    // what the same update makes of a soft-deleted row whose column is sent in full. No lookup, no guess.
    public bool IsSoftDeleted(ChangeBatch batch, int values)
        => _softDeleteIndex >= 0 && batch.Value(values + _softDeleteIndex).Kind != TupleValueKind.Null;

    public static int FindColumn(RelationInfo relation, string name)
    {
        for (var i = 0; i < relation.Columns.Length; i++)
        {
            if (relation.Columns[i].Name == name)
                return i;
        }
        return -1;
    }
}
