using System.Buffers;
using System.Text;
using System.Text.Json;
using Synchro.Pipeline.Protocol;
using Synchro.Pipeline.Decoding;
using Synchro.Pipeline.Postgres;

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

    /// <summary>Whether values of the type <paramref name="typeOid"/> are embedded as JSON (<c>json</c>, <c>jsonb</c>).</summary>
    public static bool IsJson(uint typeOid) => typeOid is JsonOid or JsonbOid;

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
    /// delete), else the registration's referenced columns — always JSON that <c>jsonb</c> stores, of at most
    /// <see cref="MaxPayloadBytes"/> bytes.
    /// </summary>
    /// <remarks>
    /// A <c>json</c> value <c>jsonb</c> cannot hold (<see cref="JsonbCannotHold"/>) is kept as a JSON string of its text,
    /// so its escapes are escaped in turn; a row larger than the bound keeps, in column order, the values that fit, and
    /// leaves out the others. Either way the object gets a <see cref="MarkerKey"/> member saying so:
    /// <c>{"as_text": ["meta"]}</c>, <c>{"omitted": ["body"], "omitted_count": 1, "bytes": 120000}</c> (the names of at
    /// most <see cref="MaxListedColumns"/> columns; <c>bytes</c>, the size of the whole row's JSON).
    /// </remarks>
    public static string Payload(ChangeBatch batch, in DecodedChange change)
    {
        var (first, names, typeOids) = change.RowValue >= 0
            ? (change.RowValue, (IReadOnlyList<string>)change.Layout!.Names, change.Layout.TypeOids)
            : (change.FirstValue, change.Table.ReferencedColumns, change.Layout?.ReferencedTypeOids);
        var buffer = new ArrayBufferWriter<byte>(256);
        using var writer = new Utf8JsonWriter(buffer, s_options);
        WritePayload(writer, batch, first, names, typeOids, budget: null);
        writer.Flush();
        if (buffer.WrittenCount <= MaxPayloadBytes)
            return Encoding.UTF8.GetString(buffer.WrittenSpan);
        var whole = buffer.WrittenCount;
        buffer.ResetWrittenCount();
        writer.Reset(buffer);
        WritePayload(writer, batch, first, names, typeOids, budget: (MaxPayloadBytes - MarkerReserveBytes, whole));
        writer.Flush();
        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    /// <summary>The most bytes of JSON a rule failure's payload holds (<see cref="Payload"/>).</summary>
    public const int MaxPayloadBytes = 64 * 1024;

    /// <summary>The member of a payload that says how it differs from the row (<see cref="Payload"/>).</summary>
    public const string MarkerKey = "$synchro";

    /// <summary>Columns named in a payload's marker; the rest are only counted.</summary>
    public const int MaxListedColumns = 32;

    // Room kept for the marker: two lists of at most MaxListedColumns names of at most 63 bytes, each byte escaped to at
    // most 6 (\u0001), with quotes and commas, and the member names and counts.
    private const int MarkerReserveBytes = (2 * MaxListedColumns * ((PgIdentifier.MaxLength * 6) + 4)) + 256;

    /// <summary>Writes the payload object; with a <paramref name="budget"/>, only the values that fit in its bytes.</summary>
    private static void WritePayload(Utf8JsonWriter writer, ChangeBatch batch, int first, IReadOnlyList<string> names, uint[]? typeOids, (int Bytes, int Whole)? budget)
    {
        List<string>? asText = null;
        List<string>? omitted = null;
        var omittedCount = 0;
        ArrayBufferWriter<byte>? scratch = null;
        Utf8JsonWriter? measure = null;
        writer.WriteStartObject();
        for (var i = 0; i < names.Count; i++)
        {
            var value = batch.Value(first + i);
            if (value.Kind == TupleValueKind.UnchangedToast)
                continue;
            var typeOid = typeOids is null ? 0 : typeOids[i];
            var text = batch.Text(value);
            var keptAsText = value.Kind == TupleValueKind.Text && typeOid is JsonOid or JsonbOid && JsonbCannotHold(text);
            if (budget is not { } limit)
            {
                writer.WritePropertyName(names[i]);
                WritePayloadValue(writer, value.Kind, text, typeOid, keptAsText);
            }
            else
            {
                scratch ??= new ArrayBufferWriter<byte>(256);
                scratch.ResetWrittenCount();
                measure ??= new Utf8JsonWriter(scratch, s_options);
                measure.Reset(scratch);
                WritePayloadValue(measure, value.Kind, text, typeOid, keptAsText);
                measure.Flush();
                // A name escapes to at most 6 bytes a character, plus its quotes, colon and comma.
                if (writer.BytesCommitted + writer.BytesPending + scratch.WrittenCount + (names[i].Length * 6) + 4 > limit.Bytes)
                {
                    omittedCount++;
                    if (omittedCount <= MaxListedColumns)
                        (omitted ??= []).Add(names[i]);
                    continue;
                }
                writer.WritePropertyName(names[i]);
                writer.WriteRawValue(scratch.WrittenSpan, skipInputValidation: true);
            }
            if (keptAsText)
                (asText ??= []).Add(names[i]);
        }
        measure?.Dispose();
        if (asText is not null || omittedCount > 0)
        {
            writer.WriteStartObject(MarkerKey);
            if (asText is not null)
                WriteNames(writer, "as_text", asText);
            if (omittedCount > 0)
            {
                WriteNames(writer, "omitted", omitted!);
                writer.WriteNumber("omitted_count", omittedCount);
                writer.WriteNumber("bytes", budget!.Value.Whole);
            }
            writer.WriteEndObject();
        }
        writer.WriteEndObject();
    }

    private static void WritePayloadValue(Utf8JsonWriter writer, TupleValueKind kind, ReadOnlySpan<byte> text, uint typeOid, bool keptAsText)
    {
        if (kind == TupleValueKind.Null)
            writer.WriteNullValue();
        else if (keptAsText)
            writer.WriteStringValue(text);
        else
            WriteValue(writer, text, typeOid);
    }

    private static void WriteNames(Utf8JsonWriter writer, string property, List<string> names)
    {
        writer.WriteStartArray(property);
        // The marker has room for MaxListedColumns names.
        foreach (var name in names.Take(MaxListedColumns))
            writer.WriteStringValue(name);
        writer.WriteEndArray();
    }

    /// <summary>
    /// Whether <paramref name="json"/>, the text of a <c>json</c> value (which the server checked for syntax only), holds an
    /// escape <c>jsonb</c> refuses: <c>\u0000</c> (22P05, "unsupported Unicode escape sequence") or a surrogate escape
    /// that is not a high one followed by a low one (22P02).
    /// </summary>
    /// <remarks>A backslash in valid JSON always starts an escape inside a string, so the scan needs no tokenizer; values without <c>\u</c> cost one vectorised search.</remarks>
    public static bool JsonbCannotHold(ReadOnlySpan<byte> json)
    {
        if (json.IndexOf("\\u"u8) < 0)
            return false;
        var i = 0;
        while (true)
        {
            var next = json[i..].IndexOf((byte)'\\');
            if (next < 0)
                return false;
            i += next;
            if (i + 1 >= json.Length)
                return false;
            if (json[i + 1] != (byte)'u')
            {
                i += 2;
                continue;
            }
            if (!TryHex(json, i + 2, out var unit))
                return false;
            if (unit == 0 || char.IsLowSurrogate((char)unit))
                return true;
            if (char.IsHighSurrogate((char)unit))
            {
                if (i + 7 >= json.Length || json[i + 6] != (byte)'\\' || json[i + 7] != (byte)'u' || !TryHex(json, i + 8, out var low) || !char.IsLowSurrogate((char)low))
                    return true;
                i += 12;
                continue;
            }
            i += 6;
        }
    }

    private static bool TryHex(ReadOnlySpan<byte> json, int start, out int value)
    {
        value = 0;
        if (start + 4 > json.Length)
            return false;
        for (var k = start; k < start + 4; k++)
        {
            var digit = HexDigit(json[k]);
            if (digit < 0)
                return false;
            value = (value << 4) | digit;
        }
        return true;
    }

    private static int HexDigit(byte c) => c switch
    {
        >= (byte)'0' and <= (byte)'9' => c - '0',
        >= (byte)'a' and <= (byte)'f' => c - 'a' + 10,
        >= (byte)'A' and <= (byte)'F' => c - 'A' + 10,
        _ => -1,
    };

    /// <summary>Whether PostgreSQL's text output of a number is also a JSON number (not <c>NaN</c> or an infinity).</summary>
    private static bool IsJsonNumber(ReadOnlySpan<byte> text)
    {
        var digits = text.Length > 0 && text[0] == (byte)'-' ? text[1..] : text;
        return digits.Length > 0 && char.IsAsciiDigit((char)digits[0]) && !digits.ContainsAny((byte)'N', (byte)'n', (byte)'I');
    }
}
