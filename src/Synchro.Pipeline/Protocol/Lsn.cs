using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using NpgsqlTypes;

namespace Synchro.Pipeline.Protocol;

/// <summary>
/// A PostgreSQL write-ahead log position (<c>pg_lsn</c>): a byte offset into the WAL, written
/// <c>XXXXXXXX/XXXXXXXX</c> (upper and lower 32 bits in hexadecimal).
/// </summary>
/// <remarks>
/// Ordering and arithmetic are those of the unsigned 64-bit offset. <see cref="Invalid"/> (0/0) is the
/// "no position" value PostgreSQL uses (<c>InvalidXLogRecPtr</c>).
/// </remarks>
public readonly struct Lsn : IEquatable<Lsn>, IComparable<Lsn>, IComparable, ISpanFormattable, IUtf8SpanFormattable, ISpanParsable<Lsn>
{
    // Longest text form: two 8-digit hex halves and the slash.
    private const int MaxTextLength = 17;

    private readonly ulong _value;

    /// <summary>Creates an LSN from its 64-bit WAL offset.</summary>
    public Lsn(ulong value) => _value = value;

    /// <summary>0/0: no position.</summary>
    public static Lsn Invalid => default;

    /// <summary>The largest possible position (FFFFFFFF/FFFFFFFF).</summary>
    public static Lsn MaxValue => new(ulong.MaxValue);

    /// <summary>The 64-bit WAL offset.</summary>
    public ulong Value => _value;

    /// <summary>Whether this is not <see cref="Invalid"/>.</summary>
    public bool IsValid => _value != 0;

    /// <summary>Parses <c>XXXXXXXX/XXXXXXXX</c>.</summary>
    /// <exception cref="FormatException">The text is not an LSN.</exception>
    public static Lsn Parse(string s) => Parse(s.AsSpan(), provider: null);

    /// <inheritdoc cref="Parse(string)"/>
    public static Lsn Parse(ReadOnlySpan<char> s) => Parse(s, provider: null);

    /// <inheritdoc/>
    public static Lsn Parse(string s, IFormatProvider? provider) => Parse(s.AsSpan(), provider);

    /// <inheritdoc/>
    public static Lsn Parse(ReadOnlySpan<char> s, IFormatProvider? provider)
        => TryParse(s, provider, out var lsn)
            ? lsn
            : throw new FormatException($"'{s}' is not a PostgreSQL LSN; expected two hexadecimal numbers of up to 8 digits separated by '/', such as 16/B374D848.");

    /// <summary>Parses <c>XXXXXXXX/XXXXXXXX</c>; false when the text is not an LSN.</summary>
    public static bool TryParse([NotNullWhen(true)] string? s, out Lsn result) => TryParse(s.AsSpan(), provider: null, out result);

    /// <inheritdoc/>
    public static bool TryParse([NotNullWhen(true)] string? s, IFormatProvider? provider, out Lsn result)
        => TryParse(s.AsSpan(), provider, out result);

    /// <inheritdoc/>
    public static bool TryParse(ReadOnlySpan<char> s, IFormatProvider? provider, out Lsn result)
    {
        result = default;
        var slash = s.IndexOf('/');
        if (slash is < 1 or > 8 || s.Length - slash - 1 is < 1 or > 8)
            return false;
        if (!uint.TryParse(s[..slash], NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var upper)
            || !uint.TryParse(s[(slash + 1)..], NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var lower))
            return false;
        result = new Lsn(((ulong)upper << 32) | lower);
        return true;
    }

    /// <summary>Formats as <c>XXXXXXXX/XXXXXXXX</c> (upper-case hexadecimal, no leading zeros), as PostgreSQL does.</summary>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{(uint)(_value >> 32):X}/{(uint)_value:X}");

    /// <inheritdoc/>
    public string ToString(string? format, IFormatProvider? formatProvider) => ToString();

    /// <inheritdoc/>
    public bool TryFormat(Span<char> destination, out int charsWritten, ReadOnlySpan<char> format, IFormatProvider? provider)
        => destination.TryWrite(CultureInfo.InvariantCulture, $"{(uint)(_value >> 32):X}/{(uint)_value:X}", out charsWritten);

    /// <inheritdoc/>
    public bool TryFormat(Span<byte> utf8Destination, out int bytesWritten, ReadOnlySpan<char> format, IFormatProvider? provider)
    {
        Span<char> text = stackalloc char[MaxTextLength];
        if (!TryFormat(text, out var length, format, provider) || utf8Destination.Length < length)
        {
            bytesWritten = 0;
            return false;
        }
        for (var i = 0; i < length; i++)
            utf8Destination[i] = (byte)text[i];
        bytesWritten = length;
        return true;
    }

    /// <summary>Converts from Npgsql's LSN type.</summary>
    public static implicit operator Lsn(NpgsqlLogSequenceNumber lsn) => new((ulong)lsn);

    /// <summary>Converts to Npgsql's LSN type.</summary>
    public static implicit operator NpgsqlLogSequenceNumber(Lsn lsn) => new(lsn._value);

    /// <summary>The position <paramref name="bytes"/> further on (or back, when negative).</summary>
    /// <exception cref="OverflowException">The result falls outside the WAL's 64-bit range.</exception>
    public Lsn Add(long bytes) => new(bytes >= 0 ? checked(_value + (ulong)bytes) : checked(_value - (ulong)(-bytes)));

    /// <summary>The number of WAL bytes from <paramref name="other"/> to this position (negative when this is earlier).</summary>
    /// <exception cref="OverflowException">The distance does not fit in a signed 64-bit integer.</exception>
    public long Subtract(Lsn other) => _value >= other._value
        ? checked((long)(_value - other._value))
        : checked(-(long)(other._value - _value));

    /// <inheritdoc cref="Add"/>
    public static Lsn operator +(Lsn lsn, long bytes) => lsn.Add(bytes);

    /// <summary>The position <paramref name="bytes"/> earlier.</summary>
    public static Lsn operator -(Lsn lsn, long bytes) => lsn.Add(checked(-bytes));

    /// <summary>The number of WAL bytes between two positions.</summary>
    public static long operator -(Lsn left, Lsn right) => left.Subtract(right);

    /// <inheritdoc/>
    public bool Equals(Lsn other) => _value == other._value;

    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is Lsn other && Equals(other);

    /// <inheritdoc/>
    public override int GetHashCode() => _value.GetHashCode();

    /// <inheritdoc/>
    public int CompareTo(Lsn other) => _value.CompareTo(other._value);

    /// <inheritdoc/>
    public int CompareTo(object? obj) => obj switch
    {
        null => 1,
        Lsn other => CompareTo(other),
        _ => throw new ArgumentException($"Object must be of type {nameof(Lsn)}.", nameof(obj)),
    };

    /// <summary>The later of two positions.</summary>
    public static Lsn Max(Lsn left, Lsn right) => left._value >= right._value ? left : right;

    /// <summary>The earlier of two positions.</summary>
    public static Lsn Min(Lsn left, Lsn right) => left._value <= right._value ? left : right;

#pragma warning disable CS1591 // Comparison operators are self-describing.
    public static bool operator ==(Lsn left, Lsn right) => left._value == right._value;
    public static bool operator !=(Lsn left, Lsn right) => left._value != right._value;
    public static bool operator <(Lsn left, Lsn right) => left._value < right._value;
    public static bool operator >(Lsn left, Lsn right) => left._value > right._value;
    public static bool operator <=(Lsn left, Lsn right) => left._value <= right._value;
    public static bool operator >=(Lsn left, Lsn right) => left._value >= right._value;
#pragma warning restore CS1591
}
