using System.Buffers;
using System.Text;
using System.Text.Json;
using Synchro.Pipeline.Protocol;
using Synchro.Pipeline.Decoding;

namespace Synchro.Pipeline.Buckets;

/// <summary>
/// A decoded row as a JSON object, each value typed by its column's type: <c>int2</c>, <c>int4</c>, <c>int8</c>,
/// <c>oid</c>, <c>float4</c>, <c>float8</c> and <c>numeric</c> as numbers (<c>NaN</c> and infinities as strings);
/// <c>bool</c> as <c>true</c>/<c>false</c>; <c>json</c> and <c>jsonb</c> embedded; SQL NULL as <c>null</c>; anything
/// else as its text output, a string. Unchanged TOAST values are left out.
/// </summary>
internal static class RowJson
{
    private const uint BoolOid = 16;
    private const uint Int8Oid = 20;
    private const uint Int2Oid = 21;
    private const uint Int4Oid = 23;
    private const uint OidOid = 26;
    private const uint JsonOid = 114;
    private const uint Float4Oid = 700;
    private const uint Float8Oid = 701;
    private const uint NumericOid = 1700;
    private const uint JsonbOid = 3802;

    private static readonly JsonWriterOptions s_options = new() { SkipValidation = true };

    /// <summary>Writes the values <paramref name="first"/> onwards of <paramref name="batch"/> as one object.</summary>
    public static void WriteRow(Utf8JsonWriter writer, ChangeBatch batch, int first, IReadOnlyList<string> names, uint[]? typeOids)
    {
        writer.WriteStartObject();
        for (var i = 0; i < names.Count; i++)
        {
            var value = batch.Value(first + i);
            if (value.Kind == TupleValueKind.UnchangedToast)
                continue;
            writer.WritePropertyName(names[i]);
            if (value.Kind == TupleValueKind.Null)
                writer.WriteNullValue();
            else
                WriteValue(writer, batch.Text(value), typeOids is null ? 0 : typeOids[i]);
        }
        writer.WriteEndObject();
    }

    /// <summary>Writes one non-null value given as its text output.</summary>
    public static void WriteValue(Utf8JsonWriter writer, ReadOnlySpan<byte> text, uint typeOid)
    {
        switch (typeOid)
        {
            case Int2Oid or Int4Oid or Int8Oid or OidOid or Float4Oid or Float8Oid or NumericOid when IsJsonNumber(text):
                writer.WriteRawValue(text, skipInputValidation: true);
                break;
            case BoolOid when text.Length == 1 && text[0] is (byte)'t' or (byte)'f':
                writer.WriteBooleanValue(text[0] == (byte)'t');
                break;
            case JsonOid or JsonbOid:
                // The server validated it on input; the jsonb cast of the whole document checks it again.
                writer.WriteRawValue(text, skipInputValidation: true);
                break;
            default:
                writer.WriteStringValue(text);
                break;
        }
    }

    /// <summary>Writes one non-null value given as a string (a value read back from the source table).</summary>
    public static void WriteValue(Utf8JsonWriter writer, string text, uint typeOid)
    {
        var bytes = ArrayPool<byte>.Shared.Rent(Encoding.UTF8.GetMaxByteCount(text.Length));
        try
        {
            var length = Encoding.UTF8.GetBytes(text, bytes);
            WriteValue(writer, bytes.AsSpan(0, length), typeOid);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(bytes);
        }
    }

    /// <summary>
    /// The row a rule failure keeps: every column when the change carries the whole row (the new row; the old row of a
    /// delete), else the registration's referenced columns.
    /// </summary>
    public static string Payload(ChangeBatch batch, in DecodedChange change)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var writer = new Utf8JsonWriter(buffer, s_options))
        {
            if (change.RowValue >= 0)
                WriteRow(writer, batch, change.RowValue, change.Layout!.Names, change.Layout.TypeOids);
            else
                WriteRow(writer, batch, change.FirstValue, change.Table.ReferencedColumns, change.Layout?.ReferencedTypeOids);
        }
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    /// <summary>Whether PostgreSQL's text output of a number is also a JSON number (not <c>NaN</c> or an infinity).</summary>
    private static bool IsJsonNumber(ReadOnlySpan<byte> text)
    {
        var digits = text.Length > 0 && text[0] == (byte)'-' ? text[1..] : text;
        return digits.Length > 0 && char.IsAsciiDigit((char)digits[0]) && !digits.ContainsAny((byte)'N', (byte)'n', (byte)'I');
    }
}
