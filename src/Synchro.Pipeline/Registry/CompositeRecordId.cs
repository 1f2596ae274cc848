using System.Buffers;
using System.Text;
using System.Text.Json;

namespace Synchro.Pipeline.Registry;

/// <summary>
/// The record id of a table with several id columns (<see cref="TableRegistration.IdColumns"/>): a JSON array of the
/// columns' text forms in their registered order, each a JSON string, SQL NULL as <c>null</c>, written in one canonical
/// form, the one JavaScript's <c>JSON.stringify</c> gives: no whitespace; inside strings only <c>"</c>, <c>\</c> and the
/// control characters U+0000 to U+001F escaped (<c>\"</c>, <c>\\</c>, <c>\b</c>, <c>\f</c>, <c>\n</c>, <c>\r</c>,
/// <c>\t</c>, the others as <c>\u00xx</c> with lower-case hex digits); everything else, non-ASCII included, as itself.
/// </summary>
/// <remarks>
/// So <c>(1, 7)</c> is <c>["1","7"]</c>, <c>('a"b', NULL)</c> is <c>["a\"b",null]</c> and <c>('', 'x')</c> is
/// <c>["","x"]</c>: the separator cannot appear unescaped inside a value, NULL is never the empty string, and any JSON
/// parser splits the id back. One row always gives one id: the writer (from the decoded UTF-8, <see cref="WriteString"/>) and
/// code that builds an id from strings (<see cref="Format"/>) write the same bytes.
/// </remarks>
internal static class CompositeRecordId
{
    private const string Null = "null";

    // The bytes (and UTF-16 code units) that must be escaped inside a JSON string.
    private static readonly SearchValues<byte> s_escapedBytes = SearchValues.Create(Escaped().Select(c => (byte)c).ToArray());
    private static readonly SearchValues<char> s_escapedChars = SearchValues.Create(Escaped().ToArray());

    private static readonly byte[] s_hex = "0123456789abcdef"u8.ToArray();

    private static IEnumerable<char> Escaped() => Enumerable.Range(0, 0x20).Select(i => (char)i).Append('"').Append('\\');

    /// <summary>The bytes <see cref="WriteString"/> writes for <paramref name="utf8"/>, quotes included.</summary>
    public static int StringLength(ReadOnlySpan<byte> utf8)
    {
        var length = utf8.Length + 2;
        var next = utf8.IndexOfAny(s_escapedBytes);
        if (next < 0)
            return length;
        foreach (var b in utf8[next..])
        {
            if (b < 0x20)
                length += ShortEscape(b) != 0 ? 1 : 5;
            else if (b is (byte)'"' or (byte)'\\')
                length++;
        }
        return length;
    }

    /// <summary>Writes <paramref name="utf8"/> (valid UTF-8) as a JSON string into <paramref name="destination"/>; returns the bytes written.</summary>
    public static int WriteString(ReadOnlySpan<byte> utf8, Span<byte> destination)
    {
        destination[0] = (byte)'"';
        var written = 1;
        while (true)
        {
            var next = utf8.IndexOfAny(s_escapedBytes);
            if (next < 0)
            {
                utf8.CopyTo(destination[written..]);
                written += utf8.Length;
                break;
            }
            utf8[..next].CopyTo(destination[written..]);
            written += next;
            written += Escape(utf8[next], destination[written..]);
            utf8 = utf8[(next + 1)..];
        }
        destination[written] = (byte)'"';
        return written + 1;
    }

    /// <summary>The bytes of <c>null</c>.</summary>
    public static ReadOnlySpan<byte> NullBytes => "null"u8;

    /// <summary>
    /// The id of <paramref name="values"/>, the columns' text forms in registered order (null for SQL NULL). Values that are
    /// not valid UTF-16 (unpaired surrogates, which no database value has) are escaped as JSON.stringify does.
    /// </summary>
    public static string Format(IReadOnlyList<string?> values)
    {
        var text = new StringBuilder(2 + values.Count * 8);
        Span<byte> escaped = stackalloc byte[6];
        text.Append('[');
        for (var i = 0; i < values.Count; i++)
        {
            if (i > 0)
                text.Append(',');
            if (values[i] is not { } value)
            {
                text.Append(Null);
                continue;
            }
            text.Append('"');
            var rest = value.AsSpan();
            while (true)
            {
                var next = rest.IndexOfAny(s_escapedChars);
                var surrogate = rest[..(next < 0 ? rest.Length : next)].IndexOfAnyInRange('\uD800', '\uDFFF');
                if (surrogate >= 0)
                {
                    // A pair stays as it is; a lone surrogate is escaped.
                    text.Append(rest[..surrogate]);
                    if (char.IsHighSurrogate(rest[surrogate]) && surrogate + 1 < rest.Length && char.IsLowSurrogate(rest[surrogate + 1]))
                    {
                        text.Append(rest.Slice(surrogate, 2));
                        rest = rest[(surrogate + 2)..];
                    }
                    else
                    {
                        text.Append(@"\u").Append(((int)rest[surrogate]).ToString("x4", System.Globalization.CultureInfo.InvariantCulture));
                        rest = rest[(surrogate + 1)..];
                    }
                    continue;
                }
                if (next < 0)
                {
                    text.Append(rest);
                    break;
                }
                text.Append(rest[..next]);
                var length = Escape((byte)rest[next], escaped);
                for (var j = 0; j < length; j++)
                    text.Append((char)escaped[j]);
                rest = rest[(next + 1)..];
            }
            text.Append('"');
        }
        return text.Append(']').ToString();
    }

    /// <summary>
    /// The values of a composite id: a JSON array of <paramref name="count"/> strings and nulls. False when
    /// <paramref name="recordId"/> is not one (not JSON, another shape, another number of values).
    /// </summary>
    public static bool TryParse(string recordId, int count, out string?[] values)
    {
        values = [];
        if (recordId.Length < 2 || recordId[0] != '[')
            return false;
        var parsed = new List<string?>(count);
        try
        {
            var reader = new Utf8JsonReader(Encoding.UTF8.GetBytes(recordId), new JsonReaderOptions { MaxDepth = 1 });
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartArray)
                return false;
            while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
            {
                switch (reader.TokenType)
                {
                    case JsonTokenType.String:
                        parsed.Add(reader.GetString());
                        break;
                    case JsonTokenType.Null:
                        parsed.Add(null);
                        break;
                    default:
                        return false;
                }
            }
            if (reader.TokenType != JsonTokenType.EndArray || reader.Read())
                return false;
        }
        catch (JsonException)
        {
            return false;
        }
        catch (InvalidOperationException)
        {
            // A string that is not valid UTF-16 once unescaped (a lone surrogate escape).
            return false;
        }
        if (parsed.Count != count)
            return false;
        values = [.. parsed];
        return true;
    }

    private static int Escape(byte b, Span<byte> destination)
    {
        destination[0] = (byte)'\\';
        if (b is (byte)'"' or (byte)'\\')
        {
            destination[1] = b;
            return 2;
        }
        if (ShortEscape(b) is var letter and not 0)
        {
            destination[1] = letter;
            return 2;
        }
        destination[1] = (byte)'u';
        destination[2] = (byte)'0';
        destination[3] = (byte)'0';
        destination[4] = s_hex[b >> 4];
        destination[5] = s_hex[b & 0xF];
        return 6;
    }

    private static byte ShortEscape(byte b) => b switch
    {
        0x08 => (byte)'b',
        0x09 => (byte)'t',
        0x0A => (byte)'n',
        0x0C => (byte)'f',
        0x0D => (byte)'r',
        _ => 0,
    };
}
