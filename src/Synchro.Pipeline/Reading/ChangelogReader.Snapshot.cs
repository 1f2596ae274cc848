using System.Buffers;
using Npgsql;
using NpgsqlTypes;

namespace Synchro.Pipeline.Reading;

public sealed partial class ChangelogReader
{
    private readonly string _snapshotSql;

    /// <summary>The statement of a snapshot page, for the plan tests.</summary>
    internal string SnapshotStatement => _snapshotSql;

    /// <summary>
    /// A page of the current members of <paramref name="buckets"/> (their rows of <c>sync_bucket_edges</c>), to start a
    /// client from or to resync buckets: keyset-paged by bucket, table name and record id.
    /// </summary>
    /// <param name="buckets">The buckets to load: 1 to <see cref="ChangelogReaderOptions.MaxBuckets"/> distinct, non-empty ids;
    /// the same ones for every page of a snapshot. Members carry these very string instances.</param>
    /// <param name="after">Null for the first page; then the previous page's <see cref="BucketSnapshotPage.Next"/>.</param>
    /// <param name="limit">The most members to return, 1 to <see cref="ChangelogReaderOptions.MaxLimit"/>.</param>
    /// <param name="cancellationToken">Cancels the read.</param>
    /// <returns>The page; the last one (<see cref="BucketSnapshotPage.IsLast"/>) carries the cursor to continue from.</returns>
    /// <remarks>
    /// <para>
    /// The first page fixes the snapshot's position S: the changelog's high-water mark (and at least the buckets'
    /// compaction horizons), read in the same statement as its members. Later pages read the members as they are then;
    /// a member that changed meanwhile also has a changelog row after S (the pipeline writes an edge and its changelog
    /// row in one transaction), so reading changes from the snapshot's cursor puts the client right. No transaction is
    /// held between pages.
    /// </para>
    /// <para>
    /// The client replaces its state of the buckets with the members, then merges the cursor:
    /// <c>cursor = cursor.WithBucketPositions(buckets, page.Cursor.Position)</c>, or uses <see cref="BucketSnapshotPage.Cursor"/>
    /// as it is when it loaded all its buckets.
    /// </para>
    /// </remarks>
    /// <exception cref="ArgumentNullException"><paramref name="buckets"/> is null.</exception>
    /// <exception cref="ArgumentException">A bucket is null, empty, too long or given twice, there are none or too many, or
    /// <paramref name="after"/> belongs to a snapshot of other buckets.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="limit"/> is out of range.</exception>
    /// <exception cref="InvalidOperationException">The changelog tables are missing or the role may not read them (the message says what to do).</exception>
    /// <exception cref="NpgsqlException">The connection or a statement failed.</exception>
    public async Task<BucketSnapshotPage> ReadSnapshotAsync(IReadOnlyList<string> buckets, BucketSnapshotToken? after, int limit, CancellationToken cancellationToken = default)
    {
        CheckBuckets(buckets);
        CheckLimit(limit);
        var sorted = buckets.ToArray();
        Array.Sort(sorted, StringComparer.Ordinal);
        var set = BucketSetHash(sorted);
        var first = 0;
        if (after is not null)
        {
            if (after.BucketSet != set)
            {
                throw new ArgumentException("The snapshot token belongs to a snapshot of other buckets: pass the same buckets with every page of a snapshot, or start a new snapshot without a token.", nameof(after));
            }
            while (first < sorted.Length && string.CompareOrdinal(sorted[first], after.BucketId) < 0)
                first++;
        }
        try
        {
            return await ReadMembersAsync(sorted, first, set, after, limit, cancellationToken).ConfigureAwait(false);
        }
        catch (PostgresException e) when (Explain(e) is { } explained)
        {
            throw explained;
        }
    }

    private async Task<BucketSnapshotPage> ReadMembersAsync(string[] sorted, int first, ulong set, BucketSnapshotToken? after, int limit, CancellationToken cancellationToken)
    {
        var count = sorted.Length - first;
        var ids = new string[count];
        var afterTable = new string[count];
        var afterRecord = new string[count];
        for (var i = 0; i < count; i++)
        {
            ids[i] = sorted[first + i];
            // ("", "") is below every member: table names are never empty.
            var continues = i == 0 && after is not null && after.BucketId == ids[i];
            afterTable[i] = continues ? after!.TableName : "";
            afterRecord[i] = continues ? after!.RecordId : "";
        }
        var members = new List<BucketMember>(Math.Min(limit, 1_024));
        var position = after?.Position ?? -1;
        var more = false;
        var scratch = new TextScratch();
        try
        {
            var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
            await using (connection.ConfigureAwait(false))
            {
                var batch = Batch(connection, _snapshotSql);
                await using (batch.ConfigureAwait(false))
                {
                    var command = batch.BatchCommands[1];
                    command.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = ids, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
                    command.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = afterTable, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
                    command.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = afterRecord, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
                    // One more than the page holds tells whether another page follows.
                    command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = limit + 1 });
                    var reader = await ExecuteAsync(batch, cancellationToken).ConfigureAwait(false);
                    await using (reader.ConfigureAwait(false))
                    {
                        var previous = 0;
                        while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                        {
                            var ordinal = reader.GetInt32(0);
                            if (ordinal == 0)
                            {
                                if (after is null)
                                    position = reader.GetInt64(1);
                                continue;
                            }
                            // Invariant: the nested loop returns the buckets in the order given, each in index order.
                            if (ordinal < previous)
                                throw new InvalidOperationException("The snapshot read returned buckets out of order; this is a bug in the reader.");
                            previous = ordinal;
                            if (members.Count == limit)
                            {
                                more = true;
                                break;
                            }
                            members.Add(new BucketMember(ids[ordinal - 1], TableName(reader, 2, scratch), reader.GetString(3)));
                        }
                    }
                }
            }
        }
        finally
        {
            scratch.Return();
        }
        if (position < 0)
            throw new InvalidOperationException("The snapshot read returned no position; this is a bug in the reader.");
        BucketSnapshotToken? next = null;
        if (more)
        {
            var last = members[^1];
            next = new BucketSnapshotToken(position, set, last.BucketId, last.TableName, last.RecordId);
        }
        return new BucketSnapshotPage(members, position, next);
    }

    /// <summary>FNV-1a over the sorted bucket ids, each with its length: tells a token passed with other buckets.</summary>
    private static ulong BucketSetHash(string[] sorted)
    {
        const ulong Prime = 1099511628211;
        var hash = 14695981039346656037;
        foreach (var bucket in sorted)
        {
            hash = (hash ^ (ulong)bucket.Length) * Prime;
            foreach (var c in bucket)
                hash = (hash ^ c) * Prime;
        }
        return hash;
    }

    // $1 bucket ids in the order to page them, $2/$3 the (table_name, record_id) to continue after in each, $4 rows. The
    // header row (ordinal 0) carries the position S: the high-water mark, raised to the buckets' horizons and the horizon
    // of every bucket (bucket id '', raised by an initial snapshot load) so that a cursor at S is never behind one, read in the same statement as the members. Per bucket, an index range scan of
    // (bucket_id, table_name, record_id); the outer LIMIT stops the nested loop once the page is full.
    private static string SnapshotSql(string schema) => $"""
        SELECT 0, GREATEST(
                   (SELECT COALESCE(pg_catalog.max(c.seq), 0) FROM {schema}.sync_changelog c),
                   (SELECT COALESCE(pg_catalog.max((SELECT h.horizon_seq FROM {schema}.sync_bucket_horizons h WHERE h.bucket_id = u.bucket_id)), 0)
                    FROM pg_catalog.unnest($1::text[]) AS u(bucket_id)),
                   (SELECT h.horizon_seq FROM {schema}.sync_bucket_horizons h WHERE h.bucket_id = '')),
               NULL::bytea, NULL::text
        UNION ALL
        (SELECT b.ord::int4, NULL::int8, pg_catalog.convert_to(e.table_name, 'UTF8'), e.record_id
         FROM ROWS FROM (pg_catalog.unnest($1::text[]), pg_catalog.unnest($2::text[]), pg_catalog.unnest($3::text[])) WITH ORDINALITY AS b(bucket_id, after_table, after_record, ord)
         CROSS JOIN LATERAL (
             SELECT e.table_name, e.record_id FROM {schema}.sync_bucket_edges e
             WHERE e.bucket_id = b.bucket_id AND (e.table_name, e.record_id) > (b.after_table, b.after_record)
             ORDER BY e.table_name, e.record_id
             LIMIT $4) e
         LIMIT $4)
        """;
}
