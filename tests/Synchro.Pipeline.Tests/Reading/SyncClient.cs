using Synchro.Pipeline.Reading;

namespace Synchro.Pipeline.Tests.Reading;

/// <summary>A sync client in a test: the records it holds per bucket (<c>"table id"</c>), kept by a snapshot, then by pulls.</summary>
internal static class SyncClient
{
    /// <summary>Loads every page of the buckets' snapshot into <paramref name="held"/>; returns the cursor to pull from.</summary>
    public static async Task<ChangelogCursor> SnapshotAsync(ChangelogReader reader, IReadOnlyList<string> buckets, Dictionary<string, HashSet<string>> held, int pageSize)
    {
        BucketSnapshotToken? after = null;
        while (true)
        {
            var page = await reader.ReadSnapshotAsync(buckets, after, pageSize);
            foreach (var member in page.Members)
                held[member.BucketId].Add($"{member.TableName} {member.RecordId}");
            if (page.IsLast)
                return page.Cursor!;
            after = page.Next;
        }
    }

    /// <summary>Reads until caught up, applying each row: insert and update put the record, delete removes it.</summary>
    public static async Task<ChangelogCursor> PullAsync(
        ChangelogReader reader, IReadOnlyList<string> buckets, ChangelogCursor cursor, Dictionary<string, HashSet<string>> held, int pageSize)
    {
        while (true)
        {
            using var page = await reader.ReadAsync(buckets, cursor, pageSize);
            Assert.Equal(ChangelogReadStatus.Ok, page.Status);
            foreach (var entry in page)
            {
                var key = $"{entry.TableName} {entry.RecordId}";
                if (entry.Operation == ChangeOperation.Delete)
                    held[entry.BucketId].Remove(key);
                else
                    held[entry.BucketId].Add(key);
            }
            cursor = page.Next;
            if (!page.HasMore)
                return cursor;
        }
    }
}
