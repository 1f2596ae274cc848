using System.Buffers;
using System.Diagnostics.CodeAnalysis;
using System.Globalization;

namespace Synchro.Pipeline.Reading;

public sealed partial class ChangelogCursor
{
    // The longest bucket id the text form carries, in bytes: far above any the changelog takes (its index holds 2,684).
    private const int MaxBucketIdBytes = 8_192;

    /// <summary>
    /// The text form: the decimal <see cref="Position"/> when there are no bucket positions, else
    /// <c>&lt;position&gt;.&lt;base64url&gt;</c> with the bucket positions in a compact encoding. Safe in a URL as is.
    /// </summary>
    public override string ToString()
    {
        var position = Position.ToString(CultureInfo.InvariantCulture);
        if (_buckets is null)
            return position;
        var writer = new CompactWriter(_buckets.Count * 24);
        // Sorted, so equal cursors have equal texts.
        var names = _buckets.Keys.ToArray();
        Array.Sort(names, StringComparer.Ordinal);
        foreach (var name in names)
        {
            writer.WriteString(name);
            writer.WriteUInt64((ulong)(_buckets[name] - Position));
        }
        return writer.ToBase64Url(position + ".");
    }

    /// <summary>Reads a cursor's text form (<see cref="ToString"/>).</summary>
    /// <exception cref="ArgumentNullException"><paramref name="text"/> is null.</exception>
    /// <exception cref="FormatException">The text is not a cursor's; the message says what is wrong with it.</exception>
    public static ChangelogCursor Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        return TryParse(text, out var cursor, out var problem)
            ? cursor
            : throw new FormatException($"'{Excerpt(text)}' is not a changelog cursor: {problem}. Pass the text of a cursor the reader returned (ChangelogCursor.ToString()), or load the buckets from a snapshot.");
    }

    /// <summary>Reads a cursor's text form (<see cref="ToString"/>); false when <paramref name="text"/> is null or not a cursor's.</summary>
    public static bool TryParse([NotNullWhen(true)] string? text, [NotNullWhen(true)] out ChangelogCursor? cursor)
        => TryParse(text, out cursor, out _);

    private static bool TryParse(string? text, [NotNullWhen(true)] out ChangelogCursor? cursor, out string problem)
    {
        cursor = null;
        if (string.IsNullOrEmpty(text))
        {
            problem = "it is empty";
            return false;
        }
        var dot = text.IndexOf('.', StringComparison.Ordinal);
        var positionText = dot < 0 ? text.AsSpan() : text.AsSpan(0, dot);
        if (positionText.IsEmpty || !long.TryParse(positionText, NumberStyles.None, CultureInfo.InvariantCulture, out var position))
        {
            problem = "its position (before any '.') is not a non-negative whole number";
            return false;
        }
        if (dot < 0)
        {
            cursor = FromPosition(position);
            problem = "";
            return true;
        }
        var bytes = CompactText.TryDecode(text.AsSpan(dot + 1), out var length);
        if (bytes is null)
        {
            problem = "the part after the '.' is not base64url";
            return false;
        }
        try
        {
            return TryReadBuckets(position, bytes.AsSpan(0, length), out cursor, out problem);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(bytes);
        }
    }

    private static bool TryReadBuckets(long position, ReadOnlySpan<byte> bytes, [NotNullWhen(true)] out ChangelogCursor? cursor, out string problem)
    {
        cursor = null;
        var reader = new CompactReader(bytes);
        var buckets = new Dictionary<string, long>(StringComparer.Ordinal);
        while (!reader.AtEnd)
        {
            if (!reader.TryReadString(MaxBucketIdBytes, out var bucket) || bucket.Length == 0)
            {
                problem = "its bucket positions are damaged (a bucket id is cut off, empty or not UTF-8)";
                return false;
            }
            if (!reader.TryReadUInt64(out var ahead) || ahead == 0 || ahead > (ulong)(long.MaxValue - position))
            {
                problem = $"its bucket positions are damaged (bucket '{Excerpt(bucket)}' has no valid position above the cursor's)";
                return false;
            }
            if (!buckets.TryAdd(bucket, position + (long)ahead))
            {
                problem = $"it names bucket '{Excerpt(bucket)}' twice";
                return false;
            }
        }
        if (buckets.Count == 0)
        {
            problem = "it has a '.' but no bucket positions after it";
            return false;
        }
        cursor = new ChangelogCursor(position, buckets);
        problem = "";
        return true;
    }

    private static string Excerpt(string text) => text.Length <= 60 ? text : string.Concat(text.AsSpan(0, 60), "…");
}
