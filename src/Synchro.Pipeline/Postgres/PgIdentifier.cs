using System.Buffers;
using System.Diagnostics.CodeAnalysis;
using System.Text;

namespace Synchro.Pipeline.Postgres;

/// <summary>Validation and quoting of PostgreSQL names taken from configuration.</summary>
/// <remarks>
/// Names are never spliced into executed SQL: queries take them as parameters. <see cref="Quote"/>
/// exists for the SQL shown to people in error messages.
/// </remarks>
internal static class PgIdentifier
{
    /// <summary>NAMEDATALEN - 1: the longest name the server stores without truncating it.</summary>
    public const int MaxLength = 63;

    private static readonly SearchValues<char> s_slotNameChars = SearchValues.Create("abcdefghijklmnopqrstuvwxyz0123456789_");

    /// <summary>
    /// Whether <paramref name="name"/> is a valid replication slot name: 1 to 63 characters, each a lower-case
    /// ASCII letter, a digit or an underscore (the server's <c>ReplicationSlotValidateName</c> rule).
    /// </summary>
    public static bool IsValid([NotNullWhen(true)] string? name) =>
        !string.IsNullOrEmpty(name)
        && name.Length <= MaxLength
        && !name.AsSpan().ContainsAnyExcept(s_slotNameChars);

    /// <summary>
    /// Whether <paramref name="name"/> can name a publication, schema, table or column exactly (as a quoted
    /// identifier would): non-empty, at most 63 bytes of UTF-8, no NUL and no unpaired surrogate.
    /// </summary>
    public static bool IsValidObjectName([NotNullWhen(true)] string? name)
    {
        if (string.IsNullOrEmpty(name))
            return false;

        var bytes = 0;
        var rest = name.AsSpan();
        while (!rest.IsEmpty)
        {
            if (Rune.DecodeFromUtf16(rest, out var rune, out var consumed) != OperationStatus.Done || rune.Value == 0)
                return false;
            bytes += rune.Utf8SequenceLength;
            if (bytes > MaxLength)
                return false;
            rest = rest[consumed..];
        }

        return true;
    }

    /// <summary>Quotes <paramref name="name"/> as an identifier: wrapped in double quotes, inner double quotes doubled.</summary>
    /// <exception cref="ArgumentException"><paramref name="name"/> fails <see cref="IsValidObjectName"/>.</exception>
    public static string Quote(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (!IsValidObjectName(name))
            throw new ArgumentException("Not a valid PostgreSQL object name: it must be 1 to 63 bytes of UTF-8 without NUL characters.", nameof(name));
        return "\"" + name.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"";
    }

    /// <summary>The quoted <c>"schema"."name"</c> form.</summary>
    /// <exception cref="ArgumentException">Either part fails <see cref="IsValidObjectName"/>.</exception>
    public static string QuoteQualified(string schema, string name) => Quote(schema) + "." + Quote(name);
}
