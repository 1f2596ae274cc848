using System.Buffers.Binary;
using System.Text;
using Synchro.Pipeline.Protocol;
using Synchro.Pipeline.Registry;

namespace Synchro.Pipeline.Pipeline.Spill;

/// <summary>
/// Appends decoded changes to a stream in the compact spill format that <see cref="SpillRecordReader"/> reads back.
/// </summary>
/// <remarks>
/// <para>
/// The format (little-endian): a table record <c>'T' u16 index, schema, name, u16 column count, column names</c>
/// (strings as <c>u16 length</c> + UTF-8) the first time a table appears, then one change record per change:
/// <c>'C' u16 table index, u8 operation</c>, and per referenced column <c>u8 kind</c> (<c>'t'</c>, <c>'n'</c>,
/// <c>'u'</c>, <c>'b'</c>), all but NULL and unchanged TOAST followed by <c>i32 length</c> + bytes. Only the registered tables' referenced columns are kept,
/// already validated by the decoder, so a record is a few dozen bytes. Tables are named, not numbered by the
/// registry, so stored records read back under a later configuration fail clearly instead of meaning another table.
/// </para>
/// <para>
/// Invariant: every change record's table record lies before it in the same stream. <see cref="Forget"/> keeps
/// that true after the stream is truncated (a rolled-back subtransaction).
/// </para>
/// </remarks>
internal sealed class SpillRecordWriter(Stream output)
{
    public const byte TableRecord = (byte)'T';
    public const byte ChangeRecord = (byte)'C';

    // Per table: its index in this stream and where its table record starts.
    private readonly Dictionary<TableRegistration, (ushort Index, long Offset)> _tables = new(ReferenceEqualityComparer.Instance);
    private byte[] _scratch = new byte[256];

    /// <summary>Bytes written so far: the offset of the next record.</summary>
    public long Position => output.Position;

    /// <summary>Appends the changes of <paramref name="batch"/> from <paramref name="first"/> on; returns the bytes written.</summary>
    public long Append(ChangeBatch batch, int first = 0)
    {
        var start = output.Position;
        for (var i = first; i < batch.Count; i++)
            Append(batch, batch[i]);
        return output.Position - start;
    }

    /// <summary>Forgets the table records at or after <paramref name="offset"/>, which the caller cut off the stream.</summary>
    public void Forget(long offset)
    {
        foreach (var (table, entry) in _tables)
        {
            if (entry.Offset >= offset)
                _tables.Remove(table);
        }
    }

    private void Append(ChangeBatch batch, in DecodedChange change)
    {
        var table = change.Table;
        if (!_tables.TryGetValue(table, out var entry))
        {
            if (_tables.Count > ushort.MaxValue)
                throw new InvalidOperationException("A spill stream holds changes of more than 65,536 tables.");
            entry = ((ushort)_tables.Count, output.Position);
            WriteTable(table, entry.Index);
            _tables.Add(table, entry);
        }

        var columns = table.ReferencedColumns.Count;
        var length = 1 + 2 + 1;
        for (var c = 0; c < columns; c++)
        {
            var value = batch.Value(change, c);
            length += HasBytes(value.Kind) ? 1 + 4 + value.Length : 1;
        }
        var span = Scratch(length);
        span[0] = ChangeRecord;
        BinaryPrimitives.WriteUInt16LittleEndian(span[1..], entry.Index);
        span[3] = (byte)change.Operation;
        var at = 4;
        for (var c = 0; c < columns; c++)
        {
            var value = batch.Value(change, c);
            span[at++] = (byte)value.Kind;
            if (!HasBytes(value.Kind))
                continue;
            BinaryPrimitives.WriteInt32LittleEndian(span[at..], value.Length);
            at += 4;
            batch.Text(value).CopyTo(span[at..]);
            at += value.Length;
        }
        output.Write(span[..length]);
    }

    /// <summary>Whether a value of <paramref name="kind"/> carries bytes: all but NULL and unchanged TOAST (text and, should a batch hold them, binary values).</summary>
    internal static bool HasBytes(TupleValueKind kind) => kind is not (TupleValueKind.Null or TupleValueKind.UnchangedToast);

    private void WriteTable(TableRegistration table, ushort index)
    {
        var columns = table.ReferencedColumns;
        var length = 1 + 2 + 2 + Encoding.UTF8.GetByteCount(table.Schema) + 2 + Encoding.UTF8.GetByteCount(table.Name) + 2;
        foreach (var column in columns)
            length += 2 + Encoding.UTF8.GetByteCount(column);
        var span = Scratch(length);
        span[0] = TableRecord;
        BinaryPrimitives.WriteUInt16LittleEndian(span[1..], index);
        var at = 3;
        at += WriteString(span[at..], table.Schema);
        at += WriteString(span[at..], table.Name);
        BinaryPrimitives.WriteUInt16LittleEndian(span[at..], checked((ushort)columns.Count));
        at += 2;
        foreach (var column in columns)
            at += WriteString(span[at..], column);
        output.Write(span[..at]);
    }

    private static int WriteString(Span<byte> span, string text)
    {
        var length = Encoding.UTF8.GetBytes(text, span[2..]);
        BinaryPrimitives.WriteUInt16LittleEndian(span, checked((ushort)length));
        return 2 + length;
    }

    private Span<byte> Scratch(int length)
    {
        if (_scratch.Length < length)
            _scratch = new byte[Math.Max(length, _scratch.Length * 2)];
        return _scratch.AsSpan(0, length);
    }
}
