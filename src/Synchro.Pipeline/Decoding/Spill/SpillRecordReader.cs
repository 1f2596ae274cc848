using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using Synchro.Pipeline.Decoding.Items;
using Synchro.Pipeline.Partitions;
using Synchro.Pipeline.Protocol;
using Synchro.Pipeline.Protocol.Messages;
using Synchro.Pipeline.Registry;

namespace Synchro.Pipeline.Decoding.Spill;

/// <summary>Reads the records <see cref="SpillRecordWriter"/> wrote back into <see cref="ChangeBatch"/>es, one change at a time.</summary>
/// <remarks>
/// <para>
/// Reads through a buffer of its own (one record at a time is in it), so memory stays that buffer whatever the stream's size.
/// A stream stored in pieces (a prepared transaction's chunks, each whole records) is read with one reader, continued on
/// each next piece (<see cref="Continue"/>): the table and layout records of earlier pieces stay in force.
/// </para>
/// <para>
/// Invariant: no record is decoded before its frame's checksum matched, and a frame's length is checked against the
/// stream before anything is allocated for it. A stream of another format, an unknown version or damaged bytes fails
/// with <see cref="SpillDamagedException"/>; records of format version 0 (no header, no frames) are read only when
/// <c>acceptsUnversioned</c> (rows stored in <c>sync_prepared_transactions</c> by earlier versions).
/// </para>
/// </remarks>
internal sealed class SpillRecordReader(Stream input, TableRegistry registry, string source, bool acceptsUnversioned = false)
{
    private Stream _input = input;
    private string _source = source;
    private const int BufferBytes = 64 * 1024;

    private static readonly UTF8Encoding s_strictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private readonly List<TableRegistration> _tables = [];
    private readonly List<RowLayout> _layouts = [];
    private readonly List<TruncatedTable> _truncated = [];
    private TruncateOptions _truncateOptions;
    private bool _hasTruncate;
    private bool _startsPiece;
    private byte[] _buffer = new byte[BufferBytes];
    private int _start;
    private int _end;
    private long _consumed;

    // The stream's format version once its start was read: 0 (unframed) or SpillFormat.CurrentVersion.
    private uint? _version;

    // The record being read: its payload is _buffer[_start.._start + _recordBytes] (unbounded for version 0).
    private int _recordBytes;

    /// <summary>The stream's format version, once the first <see cref="TryRead"/> read its start.</summary>
    public uint? FormatVersion => _version;

    /// <summary>
    /// Appends the next change to <paramref name="batch"/>; false at the end of the stream.
    /// <paramref name="recordBytes"/> is its size in the spill format, for the batch's byte limit.
    /// </summary>
    /// <exception cref="SpillDamagedException">The stream is of another format or version, or damaged.</exception>
    /// <exception cref="WalPipelineException">The records name a table the registry no longer has as it was.</exception>
    public bool TryRead(ChangeBatch batch, out int recordBytes)
    {
        _version ??= ReadFormat();
        while (true)
        {
            if (!NextRecord())
            {
                recordBytes = 0;
                return false;
            }
            var kind = _buffer[_start];
            if (_startsPiece)
            {
                _startsPiece = false;
                if (_version == 0 && kind == SpillRecordWriter.TableRecord && Ensure(3) && BinaryPrimitives.ReadUInt16LittleEndian(_buffer.AsSpan(_start + 1)) == 0)
                {
                    _tables.Clear();
                    _layouts.Clear();
                }
            }
            if (kind == SpillRecordWriter.TableRecord)
            {
                ReadTable();
                continue;
            }
            if (kind == SpillRecordWriter.LayoutRecord)
            {
                ReadLayout();
                continue;
            }
            if (kind is SpillRecordWriter.TruncateRecord or SpillRecordWriter.PartitionTruncateRecord)
            {
                recordBytes = ReadTruncate(partitions: kind == SpillRecordWriter.PartitionTruncateRecord);
                return true;
            }
            if (kind != SpillRecordWriter.ChangeRecord)
                throw Damaged($"unknown record kind 0x{kind:X2}");
            recordBytes = ReadChange(batch);
            return true;
        }
    }

    /// <summary>
    /// Goes on reading from <paramref name="next"/>, the next piece of the same stream, once <see cref="TryRead"/> returned
    /// false at the end of the current one. A piece that starts with table record #0 stands alone (pieces stored by
    /// earlier versions repeated their table records): the records read so far are then forgotten. Pieces after the first
    /// have no header.
    /// </summary>
    public void Continue(Stream next, string source)
    {
        if (_end != _start)
            throw Damaged("a piece ends inside a record");
        _input = next;
        _source = source;
        _consumed = 0;
        _startsPiece = true;
    }

    private int ReadChange(ChangeBatch batch)
    {
        Require(7);
        var index = BinaryPrimitives.ReadUInt16LittleEndian(_buffer.AsSpan(_start + 1));
        var operation = (ChangeOperation)_buffer[_start + 3];
        var layoutIndex = BinaryPrimitives.ReadUInt16LittleEndian(_buffer.AsSpan(_start + 4));
        var hasOldRow = _buffer[_start + 6] != 0;
        if (index >= _tables.Count)
            throw Damaged($"change of table #{index}, which no table record defined");
        var table = _tables[index];
        RowLayout? layout = null;
        if (layoutIndex != SpillRecordWriter.NoLayout)
        {
            if (layoutIndex >= _layouts.Count || _layouts[layoutIndex].Table != table)
                throw Damaged($"change of table #{index} with layout #{layoutIndex}, which no layout record of that table defined");
            layout = _layouts[layoutIndex];
        }
        var values = table.ReferencedColumns.Count;
        if (layout is { FullRow: true })
            values += layout.Names.Length * (hasOldRow ? 2 : 1);
        var first = batch.ValueMark.Values;
        var at = 7;
        for (var c = 0; c < values; c++)
        {
            Require(at + 1);
            var kind = (TupleValueKind)_buffer[_start + at];
            at++;
            if (kind is TupleValueKind.Null or TupleValueKind.UnchangedToast)
            {
                batch.AddEmpty(kind);
                continue;
            }
            // Invariant: a batch holds only text values (binary tuples are converted to text by the decoder), so only text comes back.
            if (kind != TupleValueKind.Text)
                throw Damaged($"unknown value kind 0x{(byte)kind:X2}");
            Require(at + 4);
            var length = BinaryPrimitives.ReadInt32LittleEndian(_buffer.AsSpan(_start + at));
            if (length < 0)
                throw Damaged($"negative value length {length}");
            at += 4;
            Require(at + length);
            batch.AddText(_buffer.AsSpan(_start + at, length));
            at += length;
        }
        batch.Add(new DecodedChange(table, operation, first, layout, hasOldRow));
        Consume(at);
        return at;
    }

    private void ReadTable()
    {
        Require(3);
        var index = BinaryPrimitives.ReadUInt16LittleEndian(_buffer.AsSpan(_start + 1));
        var at = 3;
        var schema = ReadString(ref at);
        var name = ReadString(ref at);
        Require(at + 2);
        var count = BinaryPrimitives.ReadUInt16LittleEndian(_buffer.AsSpan(_start + at));
        at += 2;
        var columns = new string[count];
        for (var i = 0; i < count; i++)
            columns[i] = ReadString(ref at);
        Consume(at);
        if (index != _tables.Count)
            throw Damaged($"table record #{index} where #{_tables.Count} was expected");
        if (!registry.TryGet(schema, name, out var table) || !table.ReferencedColumns.SequenceEqual(columns, StringComparer.Ordinal))
        {
            throw new WalPipelineException(
                $"Changes of {schema}.{name} stored in {_source} were decoded under a registration (columns {string.Join(", ", columns)}) "
                + "that the pipeline's table registry no longer has. Restore that table's registration until the stored changes are applied.");
        }
        _tables.Add(table);
    }

    /// <summary>Takes the TRUNCATE the last <see cref="TryRead"/> returned (it added no change): the tables and options.</summary>
    public bool TakeTruncate(out IReadOnlyList<TruncatedTable> tables, out TruncateOptions options)
    {
        tables = [.. _truncated];
        options = _truncateOptions;
        var had = _hasTruncate;
        _hasTruncate = false;
        return had;
    }

    private void ReadLayout()
    {
        Require(8);
        var index = BinaryPrimitives.ReadUInt16LittleEndian(_buffer.AsSpan(_start + 1));
        var tableIndex = BinaryPrimitives.ReadUInt16LittleEndian(_buffer.AsSpan(_start + 3));
        var fullRow = _buffer[_start + 5] != 0;
        var count = BinaryPrimitives.ReadUInt16LittleEndian(_buffer.AsSpan(_start + 6));
        var at = 8;
        var names = new string[count];
        for (var i = 0; i < count; i++)
            names[i] = ReadString(ref at);
        Require(at + 4 * count);
        var oids = new uint[count];
        for (var i = 0; i < count; i++)
            oids[i] = BinaryPrimitives.ReadUInt32LittleEndian(_buffer.AsSpan(_start + at + 4 * i));
        at += 4 * count;
        Consume(at);
        if (index != _layouts.Count || tableIndex >= _tables.Count)
            throw Damaged($"layout record #{index} of table #{tableIndex} out of order");
        var table = _tables[tableIndex];
        var positions = table.ReferencedColumns.Select(c => Array.IndexOf(names, c)).ToArray();
        if (positions.Any(p => p < 0))
            throw Damaged($"layout record #{index} lacks a registered column of {table}");
        _layouts.Add(new RowLayout(table, names, oids, positions, fullRow));
    }

    private int ReadTruncate(bool partitions)
    {
        Require(4);
        var options = (TruncateOptions)_buffer[_start + 1];
        var count = BinaryPrimitives.ReadUInt16LittleEndian(_buffer.AsSpan(_start + 2));
        var at = 4;
        _truncated.Clear();
        for (var i = 0; i < count; i++)
        {
            Require(at + 2);
            var index = BinaryPrimitives.ReadUInt16LittleEndian(_buffer.AsSpan(_start + at));
            at += 2;
            if (index >= _tables.Count)
                throw Damaged($"TRUNCATE of table #{index}, which no table record defined");
            PartitionFilter? partition = null;
            if (partitions)
            {
                Require(at + 1);
                if (_buffer[_start + at++] != 0)
                {
                    var name = ReadString(ref at);
                    Require(at + 4);
                    var length = BinaryPrimitives.ReadInt32LittleEndian(_buffer.AsSpan(_start + at));
                    at += 4;
                    if (length < 0)
                        throw Damaged("a partition's predicate has a negative length");
                    Require(at + length);
                    partition = new PartitionFilter(name, Encoding.UTF8.GetString(_buffer, _start + at, length), null);
                    at += length;
                }
            }
            _truncated.Add(new TruncatedTable(_tables[index], partition));
        }
        _truncateOptions = options;
        _hasTruncate = true;
        Consume(at);
        return at;
    }

    private string ReadString(ref int at)
    {
        Require(at + 2);
        var length = BinaryPrimitives.ReadUInt16LittleEndian(_buffer.AsSpan(_start + at));
        at += 2;
        Require(at + length);
        try
        {
            var text = s_strictUtf8.GetString(_buffer, _start + at, length);
            at += length;
            return text;
        }
        catch (DecoderFallbackException)
        {
            throw Damaged("a name is not valid UTF-8");
        }
    }

    /// <summary>Reads the stream's header (version 1), or recognises the records of version 0; throws for anything else.</summary>
    private uint ReadFormat()
    {
        if (!Ensure(SpillFormat.HeaderBytes) && _end == _start)
            return SpillFormat.CurrentVersion;
        var found = SpillFormat.Detect(_buffer.AsSpan(_start, _end - _start), out var problem);
        if (found is not { } version)
            throw Damaged(problem + "; it was not written by this pipeline");
        if (version > SpillFormat.CurrentVersion)
        {
            throw new SpillDamagedException(_source, _consumed,
                $"they are in spill format version {version}, which only a newer version of Synchro.Pipeline reads (this one reads versions 0 to {SpillFormat.CurrentVersion})")
            { NewerVersion = version };
        }
        if (version == 0)
        {
            if (!acceptsUnversioned)
                throw Damaged("it has no header: it was not written by this version of the pipeline");
            return 0;
        }
        if (version != SpillFormat.CurrentVersion)
            throw Damaged($"its header names format version {version}, which no version of Synchro.Pipeline wrote");
        Consume(SpillFormat.HeaderBytes);
        return version;
    }

    /// <summary>
    /// Makes the next record's payload available at <c>_start</c>, its frame checked (version 1); false at the end of the stream.
    /// </summary>
    private bool NextRecord()
    {
        if (!Ensure(1))
            return false;
        if (_version == 0)
        {
            _recordBytes = int.MaxValue;
            return true;
        }
        if (!Ensure(SpillFormat.FrameBytes))
            throw Damaged("the stream ends inside a frame");
        var length = BinaryPrimitives.ReadInt32LittleEndian(_buffer.AsSpan(_start));
        // The buffer grows only for a record the stream really holds (asking the stream its length costs a system call for a file).
        if (length < 1 || length > SpillFormat.MaxRecordBytes
            || (SpillFormat.FrameBytes + length > _buffer.Length && _input.CanSeek && length > _input.Length - _input.Position + (_end - _start) - SpillFormat.FrameBytes))
            throw Damaged($"a frame gives a record length of {length.ToString(CultureInfo.InvariantCulture)} bytes, more than the stream holds");
        if (!Ensure(SpillFormat.FrameBytes + length))
            throw Damaged("the stream ends inside a record");
        var stored = BinaryPrimitives.ReadUInt32LittleEndian(_buffer.AsSpan(_start + 4));
        var computed = SpillFormat.Checksum(_buffer.AsSpan(_start, 4), _buffer.AsSpan(_start + SpillFormat.FrameBytes, length));
        if (stored != computed)
            throw Damaged($"the checksum of a record of {length.ToString(CultureInfo.InvariantCulture)} bytes does not match (stored {stored:X8}, computed {computed:X8})");
        Consume(SpillFormat.FrameBytes);
        _recordBytes = length;
        return true;
    }

    /// <summary>Moves past the <paramref name="bytes"/> bytes of the record just read (or of the header or a frame).</summary>
    private void Consume(int bytes)
    {
        if (_recordBytes != int.MaxValue && _recordBytes != 0 && bytes != _recordBytes)
            throw Damaged($"a record of {_recordBytes.ToString(CultureInfo.InvariantCulture)} bytes holds {bytes.ToString(CultureInfo.InvariantCulture)} bytes of fields");
        _recordBytes = 0;
        _start += bytes;
        _consumed += bytes;
    }

    /// <summary>Makes the current record's first <paramref name="bytes"/> bytes available from <c>_start</c>.</summary>
    private void Require(int bytes)
    {
        if (bytes > _recordBytes)
            throw Damaged("a record is shorter than its fields");
        if (!Ensure(bytes))
            throw Damaged("the stream ends inside a record");
    }

    /// <summary>Makes the next <paramref name="bytes"/> bytes available from <c>_start</c>; false when the stream ends first.</summary>
    private bool Ensure(int bytes)
    {
        if (_end - _start >= bytes)
            return true;
        if (_buffer.Length < bytes)
        {
            var larger = new byte[Math.Max(bytes, _buffer.Length * 2)];
            _buffer.AsSpan(_start, _end - _start).CopyTo(larger);
            _buffer = larger;
        }
        else
        {
            _buffer.AsSpan(_start, _end - _start).CopyTo(_buffer);
        }
        _end -= _start;
        _start = 0;
        while (_end < bytes)
        {
            var read = _input.Read(_buffer, _end, _buffer.Length - _end);
            if (read == 0)
                return false;
            _end += read;
        }
        return true;
    }

    private SpillDamagedException Damaged(string problem) => new(_source, _consumed, problem);
}
