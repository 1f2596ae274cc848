using System.Text;

namespace Synchro.Pipeline.Postgres;

/// <summary>What PostgreSQL's <c>text</c> can hold: valid Unicode without NUL, measured in UTF-8 bytes (the encoding the pipeline requires).</summary>
internal static class PgText
{
    /// <summary>The most UTF-8 bytes one UTF-16 code unit can need (a surrogate pair is two units for four bytes).</summary>
    private const int MaxBytesPerChar = 3;

    /// <summary>Whether <paramref name="value"/> is at most <paramref name="maxBytes"/> bytes of UTF-8, counting only when its length leaves a doubt.</summary>
    public static bool FitsIn(string value, int maxBytes, out int bytes)
    {
        if (value.Length <= maxBytes / MaxBytesPerChar)
        {
            bytes = -1;
            return true;
        }
        bytes = Encoding.UTF8.GetByteCount(value);
        return bytes <= maxBytes;
    }

    /// <summary>Why <paramref name="value"/> cannot be stored as text (a NUL, an unpaired surrogate), or null when it can.</summary>
    public static string? Unstorable(string value)
    {
        var span = value.AsSpan();
        if (span.Contains('\0'))
            return "it contains a NUL character, which PostgreSQL text cannot hold";
        if (span.IndexOfAnyInRange('\uD800', '\uDFFF') >= 0 && !IsValidUtf16(span))
            return "it contains an unpaired UTF-16 surrogate, which has no UTF-8 form";
        return null;
    }

    /// <summary>
    /// <paramref name="value"/> as text PostgreSQL can always store: NUL and unpaired surrogates replaced by U+FFFD, and at
    /// most <paramref name="maxChars"/> characters (cut at a character boundary and marked <c>… (truncated)</c>).
    /// </summary>
    public static string Storable(string value, int maxChars)
    {
        const string Marker = "… (truncated)";
        var text = Unstorable(value) is null ? value : Replace(value);
        if (text.Length <= maxChars)
            return text;
        var cut = maxChars - Marker.Length;
        if (char.IsHighSurrogate(text[cut - 1]))
            cut--;
        return string.Concat(text.AsSpan(0, cut), Marker);
    }

    /// <summary>At most <paramref name="maxChars"/> characters of <paramref name="value"/> for a message, marked with an ellipsis when cut.</summary>
    public static string Excerpt(string value, int maxChars)
    {
        if (value.Length <= maxChars)
            return value;
        var cut = char.IsHighSurrogate(value[maxChars - 1]) ? maxChars - 1 : maxChars;
        return string.Concat(value.AsSpan(0, cut), "…");
    }

    private static bool IsValidUtf16(ReadOnlySpan<char> span)
    {
        for (var i = 0; i < span.Length; i++)
        {
            if (char.IsHighSurrogate(span[i]) && i + 1 < span.Length && char.IsLowSurrogate(span[i + 1]))
                i++;
            else if (char.IsSurrogate(span[i]))
                return false;
        }
        return true;
    }

    private static string Replace(string value)
    {
        var text = new StringBuilder(value.Length);
        for (var i = 0; i < value.Length; i++)
        {
            var c = value[i];
            if (char.IsHighSurrogate(c) && i + 1 < value.Length && char.IsLowSurrogate(value[i + 1]))
            {
                text.Append(c).Append(value[++i]);
            }
            else
            {
                text.Append(c == '\0' || char.IsSurrogate(c) ? '\uFFFD' : c);
            }
        }
        return text.ToString();
    }
}
