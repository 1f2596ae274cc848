using System.Text;

namespace Synchro.Pipeline.Buckets;

/// <summary>
/// Bucket ids (a prefix and a value) as strings, one string per distinct id: a lookup by characters allocates
/// nothing when the id was seen before, which is the common case (many changes, few owners).
/// </summary>
/// <remarks>Not thread-safe: one per writer. Holds at most <see cref="MaxIds"/> ids, then starts over.</remarks>
internal sealed class BucketIdCache
{
    public const int MaxIds = 65_536;

    private readonly Dictionary<string, string> _ids = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string>.AlternateLookup<ReadOnlySpan<char>> _byChars;
    private char[] _buffer = new char[128];

    public BucketIdCache() => _byChars = _ids.GetAlternateLookup<ReadOnlySpan<char>>();

    public int Count => _ids.Count;

    /// <summary><paramref name="prefix"/> followed by the UTF-8 text <paramref name="value"/>.</summary>
    public string Get(string prefix, ReadOnlySpan<byte> value)
    {
        var chars = Buffer(prefix, Encoding.UTF8.GetMaxCharCount(value.Length));
        var length = prefix.Length + Encoding.UTF8.GetChars(value, chars.AsSpan(prefix.Length));
        return Get(chars.AsSpan(0, length));
    }

    /// <summary><paramref name="prefix"/> followed by <paramref name="value"/>.</summary>
    public string Get(string prefix, string value)
    {
        var chars = Buffer(prefix, value.Length);
        value.CopyTo(chars.AsSpan(prefix.Length));
        return Get(chars.AsSpan(0, prefix.Length + value.Length));
    }

    private char[] Buffer(string prefix, int valueChars)
    {
        if (_buffer.Length < prefix.Length + valueChars)
            _buffer = new char[Math.Max(prefix.Length + valueChars, _buffer.Length * 2)];
        prefix.CopyTo(_buffer);
        return _buffer;
    }

    private string Get(ReadOnlySpan<char> id)
    {
        if (_byChars.TryGetValue(id, out var known))
            return known;
        if (_ids.Count >= MaxIds)
            _ids.Clear();
        var created = id.ToString();
        _ids.Add(created, created);
        return created;
    }
}
