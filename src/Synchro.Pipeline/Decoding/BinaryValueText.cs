using System.Buffers.Binary;
using System.Buffers.Text;
using System.Diagnostics;
using Synchro.Pipeline.Registry;

namespace Synchro.Pipeline.Decoding;

/// <summary>How a referenced column's binary (<c>'b'</c>) value becomes the text form text mode would have sent.</summary>
internal enum BinaryColumnFormat : byte
{
    /// <summary>No conversion for the column's type: a binary value of it is an error.</summary>
    Unsupported,

    /// <summary>text, varchar, bpchar, name: the send format is the text itself.</summary>
    Text,

    /// <summary>uuid: 16 bytes, shown as 36 lower-case hex digits with dashes.</summary>
    Uuid,

    /// <summary>int2, big-endian, shown in decimal.</summary>
    Int2,

    /// <summary>int4, big-endian, shown in decimal.</summary>
    Int4,

    /// <summary>int8, big-endian, shown in decimal.</summary>
    Int8,

    /// <summary>oid, unsigned big-endian, shown in decimal.</summary>
    Oid,

    /// <summary>bool, one byte, shown as <c>t</c> or <c>f</c>.</summary>
    Bool,

    /// <summary>
    /// A column read only for null versus non-null (a soft-delete column that is nothing else): any type, its value
    /// kept as the empty text.
    /// </summary>
    Presence,
}

/// <summary>
/// Binary tuple mode (<c>binary 'true'</c>): converts the binary send format of the common key types to the exact
/// text output PostgreSQL gives them, straight into a batch's UTF-8 arena, so record ids, bucket ids and the COPY
/// are byte for byte those of text mode.
/// </summary>
/// <remarks>
/// Only types whose text output depends on no session setting are converted: date and time types are not (their
/// text follows <c>DateStyle</c> and <c>TimeZone</c>), nor numeric, floats or bytea. A soft-delete column needs
/// only null versus non-null, so it may be of any type. Conversion allocates nothing.
/// </remarks>
internal static class BinaryValueText
{
    /// <summary>The longest text any converted fixed-size type produces: an int8's 20 characters (uuid: 36).</summary>
    private const int MaxFixedTextLength = 36;

    /// <summary>Type OIDs of the built-in types handled (<c>pg_type.dat</c>; stable across releases).</summary>
    internal static class TypeOids
    {
        public const uint Bool = 16;
        public const uint Name = 19;
        public const uint Int8 = 20;
        public const uint Int2 = 21;
        public const uint Int4 = 23;
        public const uint Text = 25;
        public const uint Oid = 26;
        public const uint Bpchar = 1042;
        public const uint Varchar = 1043;
        public const uint Uuid = 2950;
    }

    /// <summary>The type names accepted in binary tuple mode, for messages.</summary>
    public const string SupportedTypes = "uuid, smallint, integer, bigint, oid, boolean, text, varchar, char(n) and name";

    /// <summary>The conversion for a column of type <paramref name="typeOid"/>.</summary>
    public static BinaryColumnFormat For(uint typeOid) => typeOid switch
    {
        TypeOids.Uuid => BinaryColumnFormat.Uuid,
        TypeOids.Int2 => BinaryColumnFormat.Int2,
        TypeOids.Int4 => BinaryColumnFormat.Int4,
        TypeOids.Int8 => BinaryColumnFormat.Int8,
        TypeOids.Oid => BinaryColumnFormat.Oid,
        TypeOids.Bool => BinaryColumnFormat.Bool,
        TypeOids.Text or TypeOids.Varchar or TypeOids.Bpchar or TypeOids.Name => BinaryColumnFormat.Text,
        _ => BinaryColumnFormat.Unsupported,
    };

    /// <summary>
    /// Whether <paramref name="column"/> of <paramref name="table"/> is read for more than null versus non-null
    /// (it is the id, bucket or parent column, not only the soft-delete column), so its type must be converted.
    /// </summary>
    public static bool NeedsText(TableRegistration table, string column)
        => column != table.SoftDeleteColumn || table.IdColumns.Contains(column) || column == table.BucketColumn || (table.ParentForeignKeyColumns?.Contains(column) ?? false);

    /// <summary>The columns of <paramref name="table"/> whose type must be converted in binary tuple mode.</summary>
    public static IEnumerable<string> ConvertedColumns(TableRegistration table)
        => table.ReferencedColumns.Where(c => NeedsText(table, c));

    /// <summary>The error for a referenced column whose type binary tuple mode cannot convert.</summary>
    public static string UnsupportedColumn(string table, string column, string type)
        => $"Column '{column}' of table {table} is of type {type}, which binary tuple mode cannot turn into its text form "
            + $"(supported for id, owner, bucket and parent columns: {SupportedTypes}; a soft-delete column may be of any type). "
            + "Turn BinaryTupleMode off, or register a column of a supported type.";

    /// <summary>
    /// Writes the text form of <paramref name="data"/> into <paramref name="destination"/> (at least
    /// <see cref="MaxTextLength"/> long) and returns its length, or -1 when the bytes are not a value of the format
    /// (wrong length, or text that is not UTF-8).
    /// </summary>
    public static int Format(BinaryColumnFormat format, ReadOnlySpan<byte> data, Span<byte> destination)
    {
        Debug.Assert(destination.Length >= MaxTextLength(format, data.Length));
        int written;
        switch (format)
        {
            case BinaryColumnFormat.Text:
                if (!System.Text.Unicode.Utf8.IsValid(data))
                    return -1;
                data.CopyTo(destination);
                return data.Length;
            case BinaryColumnFormat.Presence:
                return 0;
            case BinaryColumnFormat.Uuid when data.Length == 16:
                // Big-endian: the bytes in the order PostgreSQL prints them; "D" is lower-case with dashes.
                return new Guid(data, bigEndian: true).TryFormat(destination, out written, "D") ? written : -1;
            case BinaryColumnFormat.Int2 when data.Length == 2:
                return Utf8Formatter.TryFormat(BinaryPrimitives.ReadInt16BigEndian(data), destination, out written) ? written : -1;
            case BinaryColumnFormat.Int4 when data.Length == 4:
                return Utf8Formatter.TryFormat(BinaryPrimitives.ReadInt32BigEndian(data), destination, out written) ? written : -1;
            case BinaryColumnFormat.Int8 when data.Length == 8:
                return Utf8Formatter.TryFormat(BinaryPrimitives.ReadInt64BigEndian(data), destination, out written) ? written : -1;
            case BinaryColumnFormat.Oid when data.Length == 4:
                return Utf8Formatter.TryFormat(BinaryPrimitives.ReadUInt32BigEndian(data), destination, out written) ? written : -1;
            case BinaryColumnFormat.Bool when data.Length == 1 && data[0] <= 1:
                destination[0] = data[0] == 1 ? (byte)'t' : (byte)'f';
                return 1;
            default:
                return -1;
        }
    }

    /// <summary>The room <see cref="Format"/> needs for a value of <paramref name="dataLength"/> bytes.</summary>
    public static int MaxTextLength(BinaryColumnFormat format, int dataLength)
        => format == BinaryColumnFormat.Text ? dataLength : MaxFixedTextLength;
}
