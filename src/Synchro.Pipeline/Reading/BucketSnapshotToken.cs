using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;

namespace Synchro.Pipeline.Reading;

/// <summary>
/// Where a bucket snapshot continues: its position S and the last member returned. Opaque; its text form
/// (<see cref="ToString"/>, <see cref="Parse"/>) is base64url, safe in a URL as is.
/// </summary>
/// <remarks>A token belongs to the buckets of the snapshot that issued it: pass the same buckets with it.</remarks>
public sealed class BucketSnapshotToken
{
    private const ulong Version = 1;

    // The longest id the text form carries, in bytes: far above any the changelog takes.
    private const int MaxIdBytes = 8_192;

    internal BucketSnapshotToken(long position, ulong bucketSet, string bucketId, string tableName, string recordId)
    {
        Position = position;
        BucketSet = bucketSet;
        BucketId = bucketId;
        TableName = tableName;
        RecordId = recordId;
    }

    /// <summary>The snapshot's position S, fixed by its first page.</summary>
    public long Position { get; }

    /// <summary>A hash of the snapshot's buckets, to tell a token passed with other buckets.</summary>
    internal ulong BucketSet { get; }

    internal string BucketId { get; }

    internal string TableName { get; }

    internal string RecordId { get; }

    /// <summary>The text form, for a client to send back.</summary>
    public override string ToString()
    {
        var writer = new CompactWriter(32 + BucketId.Length + TableName.Length + RecordId.Length);
        writer.WriteUInt64(Version);
        writer.WriteUInt64((ulong)Position);
        writer.WriteUInt64LittleEndian(BucketSet);
        writer.WriteString(BucketId);
        writer.WriteString(TableName);
        writer.WriteString(RecordId);
        return writer.ToBase64Url("");
    }

    /// <summary>Reads a token's text form (<see cref="ToString"/>).</summary>
    /// <exception cref="ArgumentNullException"><paramref name="text"/> is null.</exception>
    /// <exception cref="FormatException">The text is not a snapshot token's.</exception>
    public static BucketSnapshotToken Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        return TryParse(text, out var token)
            ? token
            : throw new FormatException("The text is not a bucket snapshot token (damaged, cut off, or from another version): pass the Next token of the previous snapshot page as it was, or start the snapshot again without one.");
    }

    /// <summary>Reads a token's text form (<see cref="ToString"/>); false when <paramref name="text"/> is null or not a token's.</summary>
    public static bool TryParse([NotNullWhen(true)] string? text, [NotNullWhen(true)] out BucketSnapshotToken? token)
    {
        token = null;
        if (text is null || CompactText.TryDecode(text, out var length) is not { } bytes)
            return false;
        try
        {
            var reader = new CompactReader(bytes.AsSpan(0, length));
            if (!reader.TryReadUInt64(out var version) || version != Version
                || !reader.TryReadUInt64(out var position) || position > long.MaxValue
                || !reader.TryReadBytes(8, out var set)
                || !reader.TryReadString(MaxIdBytes, out var bucket) || bucket.Length == 0
                || !reader.TryReadString(MaxIdBytes, out var table)
                || !reader.TryReadString(MaxIdBytes, out var record)
                || !reader.AtEnd)
            {
                return false;
            }
            token = new BucketSnapshotToken((long)position, BinaryPrimitives.ReadUInt64LittleEndian(set), bucket, table, record);
            return true;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(bytes);
        }
    }
}
