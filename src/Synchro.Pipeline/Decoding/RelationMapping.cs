using System.Text.Unicode;
using Synchro.Pipeline.Protocol;
using Synchro.Pipeline.Registry;

namespace Synchro.Pipeline.Decoding;

/// <summary>Where a registered table's referenced columns sit in its relation's tuples.</summary>
internal sealed partial class RelationMapping
{
    private readonly int[] _positions;
    private readonly int _softDeleteIndex;
    // The id columns are the first _idCount referenced columns (TableRegistration.IdColumns).
    private readonly int _idCount;
    // Whether every id column is in the relation's replica identity, so a key-only old row ('K') carries the whole id.
    private readonly bool _idInKey;
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
        _idCount = table.IdColumns.Count;
        _idInKey = positions.Take(_idCount).All(p => relation.Columns[p].IsKey);
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

    /// <summary>
    /// Whether the change at <paramref name="values"/> has its record id: a one-column id as text; an id of several columns
    /// with every column's value (NULL is one, an unchanged TOAST value is not).
    /// </summary>
    public bool HasId(ChangeBatch batch, int values)
    {
        if (_idCount == 1)
            return batch.Value(values).Kind == TupleValueKind.Text;
        for (var i = 0; i < _idCount; i++)
        {
            if (batch.Value(values + i).Kind == TupleValueKind.UnchangedToast)
                return false;
        }
        return true;
    }

    /// <summary>Whether an id column of the change at <paramref name="values"/> arrived as an unchanged TOAST value.</summary>
    public bool HasUnchangedId(ChangeBatch batch, int values)
    {
        for (var i = 0; i < _idCount; i++)
        {
            if (batch.Value(values + i).Kind == TupleValueKind.UnchangedToast)
                return true;
        }
        return false;
    }

    /// <summary>
    /// Whether the old row of a DELETE carries the whole id: a key-only old row (<paramref name="keyOnly"/>) carries only the
    /// replica identity's columns, and the id read from it (<paramref name="values"/>) must be complete.
    /// </summary>
    public bool HasOldId(ChangeBatch batch, int values, bool keyOnly) => (!keyOnly || _idInKey) && HasId(batch, values);

    /// <summary>Replaces the id columns of the change at <paramref name="values"/> that arrived unchanged with the old row's, when that has them.</summary>
    public void ReadOldId(TupleData oldRow, ChangeBatch batch, int values)
    {
        for (var i = 0; i < _idCount; i++)
        {
            if (batch.Value(values + i).Kind != TupleValueKind.UnchangedToast)
                continue;
            var id = oldRow[_positions[i]];
            switch (id.Kind)
            {
                case TupleValueKind.Text:
                    if (!Utf8.IsValid(id.Data))
                        throw new WalPipelineException($"Column '{Relation.Columns[_positions[i]].Name}' of {Table} arrived with invalid UTF-8; the database encoding must be UTF8.");
                    batch.SetText(values + i, id.Data);
                    break;
                case TupleValueKind.Binary when _formats is not null:
                    if (!batch.SetBinary(values + i, _formats[i], id.Data))
                        ThrowBadBinary(i, id.Data.Length);
                    break;
            }
        }
    }

    /// <summary>
    /// Whether the old row read at <paramref name="oldValues"/> names another record than the new row at
    /// <paramref name="newValues"/>: an id column the old row carries has another value. Of a key-only old row
    /// (<paramref name="keyOnly"/>) only the replica identity's columns count; the server sends NULLs for the others.
    /// </summary>
    public bool IdChanged(ChangeBatch batch, int newValues, int oldValues, bool keyOnly)
    {
        for (var i = 0; i < _idCount; i++)
        {
            if (keyOnly && !Relation.Columns[_positions[i]].IsKey)
                continue;
            var oldId = batch.Value(oldValues + i);
            var newId = batch.Value(newValues + i);
            // An unchanged TOAST value is the same; a one-column id is never NULL, so an old NULL says nothing.
            if (oldId.Kind == TupleValueKind.UnchangedToast || (_idCount == 1 && oldId.Kind != TupleValueKind.Text))
                continue;
            if (oldId.Kind != newId.Kind || !batch.Text(oldId).SequenceEqual(batch.Text(newId)))
                return true;
        }
        return false;
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
