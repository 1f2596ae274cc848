using System.Buffers;
using System.Text;
using Npgsql;

namespace Synchro.Pipeline.Reading;

/// <summary>
/// Pooled buffers one read decodes text columns through: the reads select them as UTF-8 <c>bytea</c>
/// (<c>convert_to</c>), which Npgsql copies out without allocating, where reading text as characters allocates per value.
/// </summary>
/// <remarks>The only owner of its arrays: a buffer that grows returns the smaller one, and <see cref="Return"/> the rest.</remarks>
internal sealed class TextScratch
{
    // Table names and typical ids fit; a longer id grows the buffers once per read.
    private const int InitialBytes = 512;

    private byte[] _bytes = ArrayPool<byte>.Shared.Rent(InitialBytes);
    private char[] _chars = ArrayPool<char>.Shared.Rent(InitialBytes);

    /// <summary>The UTF-8 bytes of column <paramref name="ordinal"/> of the current row, valid until the next call.</summary>
    public ReadOnlySpan<byte> Utf8(NpgsqlDataReader reader, int ordinal)
    {
        var length = (int)reader.GetBytes(ordinal, 0, null, 0, 0);
        if (length > _bytes.Length)
        {
            ArrayPool<byte>.Shared.Return(_bytes);
            _bytes = [];
            _bytes = ArrayPool<byte>.Shared.Rent(length);
        }
        if (length > 0)
            reader.GetBytes(ordinal, 0, _bytes, 0, length);
        return _bytes.AsSpan(0, length);
    }

    /// <summary>Column <paramref name="ordinal"/> decoded into the scratch characters, valid until the next call.</summary>
    public ReadOnlySpan<char> Chars(NpgsqlDataReader reader, int ordinal)
    {
        var utf8 = Utf8(reader, ordinal);
        // UTF-8 never takes fewer bytes than UTF-16 takes characters.
        if (utf8.Length > _chars.Length)
        {
            ArrayPool<char>.Shared.Return(_chars);
            _chars = [];
            _chars = ArrayPool<char>.Shared.Rent(utf8.Length);
        }
        var count = Encoding.UTF8.GetChars(utf8, _chars);
        return _chars.AsSpan(0, count);
    }

    public void Return()
    {
        if (_bytes.Length > 0)
            ArrayPool<byte>.Shared.Return(_bytes);
        if (_chars.Length > 0)
            ArrayPool<char>.Shared.Return(_chars);
        _bytes = [];
        _chars = [];
    }
}
