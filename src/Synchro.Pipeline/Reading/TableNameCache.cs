using System.Collections.Concurrent;

namespace Synchro.Pipeline.Reading;

/// <summary>
/// The table names a reader has seen, looked up by their characters so that a row's table name costs no allocation once
/// its table was seen. Bounded: past <see cref="Capacity"/> names, new ones are returned uncached.
/// </summary>
internal sealed class TableNameCache
{
    /// <summary>Far more tables than a pipeline registers; bounds memory if rows name tables that come and go.</summary>
    public const int Capacity = 1_024;

    /// <summary>The longest table name read without allocating: a schema-qualified name is at most 63 + 1 + 63 characters.</summary>
    public const int MaxNameLength = 256;

    private readonly ConcurrentDictionary<string, string> _names = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, string>.AlternateLookup<ReadOnlySpan<char>> _lookup;

    public TableNameCache() => _lookup = _names.GetAlternateLookup<ReadOnlySpan<char>>();

    public int Count => _names.Count;

    public string Get(ReadOnlySpan<char> name)
    {
        if (_lookup.TryGetValue(name, out var cached))
            return cached;
        var created = new string(name);
        return _names.Count < Capacity ? _names.GetOrAdd(created, created) : created;
    }
}
