using System.Buffers.Binary;
using System.Text;
using Synchro.Pipeline.Decoding.Items;
using Synchro.Pipeline.Protocol;
using Synchro.Pipeline.Protocol.Messages;
using Synchro.Pipeline.Registry;

namespace Synchro.Pipeline.Decoding.Spill;

/// <summary>
/// Appends decoded changes to a stream in the compact spill format that <see cref="SpillRecordReader"/> reads back.
/// </summary>
/// <remarks>
/// <para>
/// The stream starts with the format's header, and each record is framed with its length and checksum
/// (<see cref="SpillFormat"/>). The records (little-endian): a table record <c>'T' u16 index, schema, name, u16 column count, column names</c>
/// (strings as <c>u16 length</c> + UTF-8) the first time a table appears; a layout record <c>'L' u16 index, u16 table
/// index, u8 full row, u16 column count, column names, u32 type OIDs</c> the first time a relation layout appears; then
/// one change record per change: <c>'C' u16 table index, u8 operation, u16 layout index (0xFFFF: none), u8 has old
/// row</c>, and per value <c>u8 kind</c> (<c>'t'</c>, <c>'n'</c>, <c>'u'</c>, <c>'b'</c>), all but NULL and unchanged
/// TOAST followed by <c>i32 length</c> + bytes — the referenced columns, then (full-row layouts) the whole row and the
/// old row when there is one. A TRUNCATE is <c>'X' u8 options, u16 count, u16 table indexes</c> after the changes
/// before it; one that empties partitions is <c>'P' u8 options, u16 count</c>, then per table <c>u16 index, u8 partition</c>
/// and, when that is 1, the partition's name and <c>i32 length</c> + UTF-8 of its predicate. Only the registered tables' referenced columns (and whole rows where a rule needs them) are kept,
/// already validated by the decoder, so a record is a few dozen bytes. Tables are named, not numbered by the
/// registry, so stored records read back under a later configuration fail clearly instead of meaning another table.
/// </para>
/// <para>
/// Invariant: every change record's table record lies before it in the same stream. <see cref="Forget"/> keeps
/// that true after the stream is truncated (a rolled-back subtransaction).
/// </para>
/// </remarks>
internal sealed class SpillRecordWriter
{
    public const byte TableRecord = (byte)'T';
    public const byte ChangeRecord = (byte)'C';
    public const byte LayoutRecord = (byte)'L';
    public const byte TruncateRecord = (byte)'X';
    public const byte PartitionTruncateRecord = (byte)'P';
    public const ushort NoLayout = ushort.MaxValue;

    // Per table: its index in this stream and where its table record starts.
    private readonly Dictionary<TableRegistration, (ushort Index, long Offset)> _tables = new(ReferenceEqualityComparer.Instance);
    private readonly Dictionary<RowLayout, (ushort Index, long Offset)> _layouts = new(ReferenceEqualityComparer.Instance);
    private readonly Stream _output;

    // A record is built after room for its frame, then written with it in one call.
    private byte[] _scratch = new byte[256];

    /// <summary>Starts a stream on <paramref name="output"/>, an empty stream: writes the format's header.</summary>
    public SpillRecordWriter(Stream output)
    {
        _output = output;
        Span<byte> header = stackalloc byte[SpillFormat.HeaderBytes];
        SpillFormat.WriteHeader(header);
        _output.Write(header);
    }

    /// <summary>Bytes written so far: the offset of the next record.</summary>
    public long Position => _output.Position;

    /// <summary>Appends the changes of <paramref name="batch"/> from <paramref name="first"/> on; returns the bytes written.</summary>
    public long Append(ChangeBatch batch, int first = 0)
    {
        var start = _output.Position;
        for (var i = first; i < batch.Count; i++)
            Append(batch, batch[i]);
        return _output.Position - start;
    }

    /// <summary>Forgets the table records at or after <paramref name="offset"/>, which the caller cut off the stream.</summary>
    public void Forget(long offset)
    {
        foreach (var (table, entry) in _tables)
        {
            if (entry.Offset >= offset)
                _tables.Remove(table);
        }
        foreach (var (layout, entry) in _layouts)
        {
            if (entry.Offset >= offset)
                _layouts.Remove(layout);
        }
    }

    private ushort TableIndex(TableRegistration table)
    {
        if (!_tables.TryGetValue(table, out var entry))
        {
            if (_tables.Count >= ushort.MaxValue)
                throw new InvalidOperationException("A spill stream holds changes of more than 65,535 tables.");
            entry = ((ushort)_tables.Count, _output.Position);
            WriteTable(table, entry.Index);
            _tables.Add(table, entry);
        }
        return entry.Index;
    }

    private ushort LayoutIndex(RowLayout? layout, ushort tableIndex)
    {
        if (layout is null)
            return NoLayout;
        if (!_layouts.TryGetValue(layout, out var entry))
        {
            if (_layouts.Count >= ushort.MaxValue - 1)
                throw new InvalidOperationException("A spill stream holds more than 65,534 relation layouts.");
            entry = ((ushort)_layouts.Count, _output.Position);
            WriteLayout(layout, entry.Index, tableIndex);
            _layouts.Add(layout, entry);
        }
        return entry.Index;
    }

    /// <summary>Appends a TRUNCATE of <paramref name="tables"/> (after the changes before it); returns the bytes written.</summary>
    public long AppendTruncate(IReadOnlyList<TruncatedTable> tables, TruncateOptions options)
    {
        var start = _output.Position;
        Span<ushort> indexes = tables.Count <= 64 ? stackalloc ushort[tables.Count] : new ushort[tables.Count];
        var partitions = false;
        var length = 1 + 1 + 2 + 2 * tables.Count;
        for (var i = 0; i < tables.Count; i++)
        {
            indexes[i] = TableIndex(tables[i].Table);
            if (tables[i].Partition is { } partition)
            {
                partitions = true;
                length += 2 + Encoding.UTF8.GetByteCount(partition.Name) + 4 + Encoding.UTF8.GetByteCount(partition.Predicate!);
            }
        }
        // Without partitions, the record earlier versions read.
        if (partitions)
            length += tables.Count;
        var span = Scratch(length);
        span[0] = partitions ? PartitionTruncateRecord : TruncateRecord;
        span[1] = (byte)options;
        BinaryPrimitives.WriteUInt16LittleEndian(span[2..], checked((ushort)tables.Count));
        var at = 4;
        for (var i = 0; i < indexes.Length; i++)
        {
            BinaryPrimitives.WriteUInt16LittleEndian(span[at..], indexes[i]);
            at += 2;
            if (!partitions)
                continue;
            if (tables[i].Partition is not { } partition)
            {
                span[at++] = 0;
                continue;
            }
            span[at++] = 1;
            at += WriteString(span[at..], partition.Name);
            var predicate = Encoding.UTF8.GetBytes(partition.Predicate!, span[(at + 4)..]);
            BinaryPrimitives.WriteInt32LittleEndian(span[at..], predicate);
            at += 4 + predicate;
        }
        WriteRecord(length);
        return _output.Position - start;
    }

    private void WriteLayout(RowLayout layout, ushort index, ushort tableIndex)
    {
        var length = 1 + 2 + 2 + 1 + 2;
        foreach (var name in layout.Names)
            length += 2 + Encoding.UTF8.GetByteCount(name) + 4;
        var span = Scratch(length);
        span[0] = LayoutRecord;
        BinaryPrimitives.WriteUInt16LittleEndian(span[1..], index);
        BinaryPrimitives.WriteUInt16LittleEndian(span[3..], tableIndex);
        span[5] = layout.FullRow ? (byte)1 : (byte)0;
        BinaryPrimitives.WriteUInt16LittleEndian(span[6..], checked((ushort)layout.Names.Length));
        var at = 8;
        foreach (var name in layout.Names)
            at += WriteString(span[at..], name);
        foreach (var oid in layout.TypeOids)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(span[at..], oid);
            at += 4;
        }
        WriteRecord(at);
    }

    private void Append(ChangeBatch batch, in DecodedChange change)
    {
        var table = change.Table;
        var tableIndex = TableIndex(table);
        var layoutIndex = LayoutIndex(change.Layout, tableIndex);
        var columns = table.ReferencedColumns.Count;
        if (change.Layout is { FullRow: true } layout)
            columns += layout.Names.Length * (change.OldRowValue >= 0 ? 2 : 1);
        var length = 1 + 2 + 1 + 2 + 1;
        for (var c = 0; c < columns; c++)
        {
            var value = batch.Value(change, c);
            length += HasBytes(value.Kind) ? 1 + 4 + value.Length : 1;
        }
        var span = Scratch(length);
        span[0] = ChangeRecord;
        BinaryPrimitives.WriteUInt16LittleEndian(span[1..], tableIndex);
        span[3] = (byte)change.Operation;
        BinaryPrimitives.WriteUInt16LittleEndian(span[4..], layoutIndex);
        span[6] = change.HasOldRow ? (byte)1 : (byte)0;
        var at = 7;
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
        WriteRecord(length);
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
        WriteRecord(at);
    }

    private static int WriteString(Span<byte> span, string text)
    {
        var length = Encoding.UTF8.GetBytes(text, span[2..]);
        BinaryPrimitives.WriteUInt16LittleEndian(span, checked((ushort)length));
        return 2 + length;
    }

    /// <summary>Room for a record of <paramref name="length"/> bytes, after room for its frame.</summary>
    private Span<byte> Scratch(int length)
    {
        var needed = SpillFormat.FrameBytes + length;
        if (_scratch.Length < needed)
            _scratch = new byte[Math.Max(needed, _scratch.Length * 2)];
        return _scratch.AsSpan(SpillFormat.FrameBytes, length);
    }

    /// <summary>Writes the record of <paramref name="length"/> bytes built in <see cref="Scratch"/>, framed with its length and checksum.</summary>
    private void WriteRecord(int length)
    {
        if (length > SpillFormat.MaxRecordBytes)
            throw new InvalidOperationException($"A spill record of {length} bytes is larger than the format allows.");
        var frame = _scratch.AsSpan(0, SpillFormat.FrameBytes + length);
        BinaryPrimitives.WriteInt32LittleEndian(frame, length);
        BinaryPrimitives.WriteUInt32LittleEndian(frame[4..], SpillFormat.Checksum(frame[..4], frame[SpillFormat.FrameBytes..]));
        _output.Write(frame);
    }
}
