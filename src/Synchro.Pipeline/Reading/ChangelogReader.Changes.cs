using System.Buffers;
using Npgsql;
using NpgsqlTypes;

namespace Synchro.Pipeline.Reading;

public sealed partial class ChangelogReader
{
    // Rows asked of each bucket in a pass: at least this many, so a pass over a few buckets is not a trickle.
    private const int MinRowsPerBucket = 4;

    // Passes per page: each reads only the buckets the previous one cut off, so a page's work stays bounded by about
    // MaxPasses × (2 × limit + MinRowsPerBucket × buckets) rows, whatever the backlog.
    private const int MaxPasses = 4;

    private readonly string _changesSql;

    /// <summary>The statement of a read pass, for the plan tests.</summary>
    internal string ChangesStatement => _changesSql;

    /// <summary>
    /// The changelog rows of <paramref name="buckets"/> after <paramref name="cursor"/>, in <c>seq</c> order, at most
    /// <paramref name="limit"/>; or, when some of the buckets cannot be continued from the cursor, which ones to resync.
    /// </summary>
    /// <param name="buckets">The client's buckets: 1 to <see cref="ChangelogReaderOptions.MaxBuckets"/> distinct, non-empty ids.
    /// The page's entries carry these very string instances.</param>
    /// <param name="cursor">The client's cursor: the previous page's <see cref="ChangelogPage.Next"/>, or a snapshot's cursor.</param>
    /// <param name="limit">The most rows to return, 1 to <see cref="ChangelogReaderOptions.MaxLimit"/>.</param>
    /// <param name="cancellationToken">Cancels the read.</param>
    /// <returns>
    /// A page to dispose once read. With <see cref="ChangelogReadStatus.Ok"/>: the rows, the cursor to pass next, and whether
    /// more rows may already be waiting. With <see cref="ChangelogReadStatus.ResyncRequired"/>: the buckets to load again from
    /// <see cref="ReadSnapshotAsync"/>, and why.
    /// </returns>
    /// <remarks>
    /// <para>
    /// A client that has read up to a position never misses a row that commits later: the pipeline commits the changelog
    /// serially, so once a row is visible, no row with a lower <c>seq</c> commits after it. When the page reaches the newest
    /// rows, <see cref="ChangelogPage.Next"/> moves to the changelog's high-water mark (never backwards).
    /// </para>
    /// <para>
    /// The horizon check (compaction removed delete rows after the cursor) and the cursor check (the cursor is ahead of the
    /// changelog's sequence: another or a restored changelog) run in the same statement as the read of the rows.
    /// </para>
    /// </remarks>
    /// <exception cref="ArgumentNullException"><paramref name="buckets"/> or <paramref name="cursor"/> is null.</exception>
    /// <exception cref="ArgumentException">A bucket is null, empty, too long or given twice, or there are none or too many.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="limit"/> is out of range.</exception>
    /// <exception cref="InvalidOperationException">The changelog tables are missing or the role may not read them (the message says what to do).</exception>
    /// <exception cref="NpgsqlException">The connection or a statement failed.</exception>
    public async Task<ChangelogPage> ReadAsync(IReadOnlyList<string> buckets, ChangelogCursor cursor, int limit, CancellationToken cancellationToken = default)
    {
        CheckBuckets(buckets);
        ArgumentNullException.ThrowIfNull(cursor);
        CheckLimit(limit);
        try
        {
            return await ReadChangesAsync(buckets, cursor, limit, cancellationToken).ConfigureAwait(false);
        }
        catch (PostgresException e) when (Explain(e) is { } explained)
        {
            throw explained;
        }
    }

    private async Task<ChangelogPage> ReadChangesAsync(IReadOnlyList<string> buckets, ChangelogCursor cursor, int limit, CancellationToken cancellationToken)
    {
        var n = buckets.Count;
        var rows = ChangelogRows.Rent();
        var scratch = new TextScratch();
        // Per bucket (index in buckets): rows fetched in its last pass, and the seq read up to.
        var fetched = ArrayPool<int>.Shared.Rent(n);
        var readTo = ArrayPool<long>.Shared.Rent(n);
        var handedOver = false;
        try
        {
            var connection = await OpenAsync(cancellationToken).ConfigureAwait(false);
            await using (connection.ConfigureAwait(false))
            {
                var passBuckets = new int[n];
                for (var i = 0; i < n; i++)
                {
                    passBuckets[i] = i;
                    readTo[i] = cursor.PositionOf(buckets[i]);
                }
                var passCount = n;
                var need = limit;
                var high = 0L;
                var certainTo = 0L;
                var truncated = 0;
                for (var pass = 0; ; pass++)
                {
                    var perBucket = RowsPerBucket(need, passCount);
                    var ids = new string[passCount];
                    var after = new long[passCount];
                    for (var i = 0; i < passCount; i++)
                    {
                        ids[i] = buckets[passBuckets[i]];
                        after[i] = readTo[passBuckets[i]];
                        fetched[passBuckets[i]] = 0;
                    }
                    // The first pass reads in the statement's own snapshot; later ones stay at or below its high-water
                    // mark, where nothing new can commit, so the passes together read one consistent prefix.
                    var header = await FetchChangesAsync(connection, ids, after, passBuckets, perBucket, pass == 0 ? long.MaxValue : high,
                        pass == 0 ? cursor.MaxPosition : 0, rows, fetched, readTo, scratch, cancellationToken).ConfigureAwait(false);
                    if (pass == 0)
                    {
                        if (header.SequenceLastValue < cursor.MaxPosition)
                            return new ChangelogPage(buckets, cursor, buckets, ResyncReason.CursorAhead);
                        if (header.HorizonPassed.Length > 0)
                            return new ChangelogPage(buckets, cursor, Pick(buckets, header.HorizonPassed), ResyncReason.HorizonPassed);
                        high = header.HighWaterMark;
                    }
                    else if (header.HorizonPassed.Length > 0)
                    {
                        // Compaction moved a horizon since the first pass: keep what the earlier passes made certain; the
                        // next read reports the resync.
                        break;
                    }
                    // A bucket that returned all it was asked for may hold more: rows are certain only up to the lowest
                    // seq such a bucket reached; every other bucket is complete up to the high-water mark.
                    truncated = 0;
                    certainTo = Math.Max(high, cursor.Position);
                    for (var i = 0; i < passCount; i++)
                    {
                        var bucket = passBuckets[i];
                        if (fetched[bucket] == perBucket)
                        {
                            passBuckets[truncated++] = bucket;
                            certainTo = Math.Min(certainTo, readTo[bucket]);
                        }
                    }
                    var certain = 0;
                    for (var r = 0; r < rows.Count; r++)
                    {
                        if (rows.Seq[r] <= certainTo)
                            certain++;
                    }
                    if (truncated == 0 || certain >= limit || pass + 1 == MaxPasses)
                        break;
                    passCount = truncated;
                    need = limit - certain;
                }
                var page = Page(buckets, cursor, limit, rows, certainTo, truncated > 0);
                handedOver = true;
                return page;
            }
        }
        finally
        {
            scratch.Return();
            ArrayPool<int>.Shared.Return(fetched);
            ArrayPool<long>.Shared.Return(readTo);
            if (!handedOver)
                rows.Return();
        }
    }

    /// <summary>The page of the rows at or below <paramref name="certainTo"/>, the first <paramref name="limit"/> of them.</summary>
    private static ChangelogPage Page(IReadOnlyList<string> buckets, ChangelogCursor cursor, int limit, ChangelogRows rows, long certainTo, bool cutOff)
    {
        rows.SortBySeq();
        var certain = 0;
        while (certain < rows.Count && rows.Seq[rows.Order[certain]] <= certainTo)
            certain++;
        var count = Math.Min(limit, certain);
        // Invariant: every row of the buckets at or below the new position is in the page or was read before.
        var position = count < certain ? rows.Seq[rows.Order[count - 1]] : certainTo;
        var hasMore = count < certain || cutOff;
        return new ChangelogPage(buckets, rows, count, cursor.Advance(position), hasMore);
    }

    private static int RowsPerBucket(int need, int buckets)
    {
        var share = (int)Math.Min(int.MaxValue, Math.Max(MinRowsPerBucket, 2L * need / buckets + 1));
        // No bucket needs more than need + 1 rows: need of them fill the page, one more tells whether there is more.
        return Math.Min(share, need + 1);
    }

    private static string[] Pick(IReadOnlyList<string> buckets, int[] ordinals)
    {
        var picked = new string[ordinals.Length];
        for (var i = 0; i < ordinals.Length; i++)
            picked[i] = buckets[ordinals[i] - 1];
        return picked;
    }

    private readonly record struct ChangesHeader(long HighWaterMark, long SequenceLastValue, int[] HorizonPassed);

    private async Task<ChangesHeader> FetchChangesAsync(NpgsqlConnection connection, string[] ids, long[] after, int[] passBuckets, int perBucket,
        long upTo, long cursorMax, ChangelogRows rows, int[] fetched, long[] readTo, TextScratch scratch, CancellationToken cancellationToken)
    {
        var batch = Batch(connection, _changesSql);
        await using (batch.ConfigureAwait(false))
        {
            var command = batch.BatchCommands[1];
            command.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = ids, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
            command.Parameters.Add(new NpgsqlParameter<long[]> { TypedValue = after, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bigint });
            command.Parameters.Add(new NpgsqlParameter<int> { TypedValue = perBucket });
            command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = upTo });
            command.Parameters.Add(new NpgsqlParameter<string> { TypedValue = _changelogTable });
            command.Parameters.Add(new NpgsqlParameter<long> { TypedValue = cursorMax });
            var reader = await ExecuteAsync(batch, cancellationToken).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                ChangesHeader? header = null;
                while (await reader.ReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    var ordinal = reader.GetInt32(0);
                    if (ordinal == 0)
                    {
                        // Bucket ordinals in the header are of the pass; map them back to the caller's.
                        var passed = reader.GetFieldValue<int[]>(6);
                        for (var i = 0; i < passed.Length; i++)
                            passed[i] = passBuckets[passed[i] - 1] + 1;
                        header = new ChangesHeader(reader.GetInt64(1), reader.GetInt64(5), passed);
                        continue;
                    }
                    var bucket = passBuckets[ordinal - 1];
                    var seq = reader.GetInt64(1);
                    var row = rows.Add(seq, bucket, reader.GetInt16(4), TableName(reader, 2, scratch));
                    rows.SetRecordId(row, scratch.Utf8(reader, 3));
                    fetched[bucket]++;
                    readTo[bucket] = Math.Max(readTo[bucket], seq);
                }
                return header ?? throw new InvalidOperationException("The changelog read returned no header row; this is a bug in the reader.");
            }
        }
    }

    // $1 bucket ids, $2 each one's position, $3 rows per bucket, $4 the highest seq to read, $5 the changelog table's name
    // for its sequence, $6 the cursor's highest position. One statement, so one snapshot: the high-water mark, the
    // horizons and the rows agree. The header row (ordinal 0) comes with the rows; rows are read only when no bucket
    // needs a resync and the cursor is not ahead of the sequence (a one-time filter). Per bucket, a primary key probe of
    // its horizon (a scalar subquery, which the planner keeps per bucket) and an index range scan of (bucket_id, seq), at
    // most $3 rows. The horizon of bucket '' (no bucket has that id) is every bucket's: the initial snapshot raises it.
    // Names and ids come as UTF-8 bytea, decoded into pooled buffers. A seq column without an owned
    // sequence (not the pipeline's schema) cannot tell a cursor ahead: that check is skipped rather than sending every
    // client into a resync. A role without SELECT or USAGE on the sequence gets NULL from pg_sequence_last_value on 18
    // (an error before), which would read as an empty sequence and every cursor as ahead: currval, which checks the
    // privilege first, raises the same 42501 instead.
    private static string ChangesSql(string schema) => $"""
        WITH b AS MATERIALIZED (
            SELECT u.bucket_id, u.after, u.ord::int4 AS ord
            FROM ROWS FROM (pg_catalog.unnest($1::text[]), pg_catalog.unnest($2::int8[])) WITH ORDINALITY AS u(bucket_id, after, ord)),
        s AS MATERIALIZED (
            SELECT (SELECT COALESCE(pg_catalog.max(c.seq), 0) FROM {schema}.sync_changelog c) AS high,
                   (SELECT CASE WHEN q.name IS NULL THEN 9223372036854775807
                                WHEN pg_catalog.has_sequence_privilege(q.name, 'SELECT, USAGE')
                                    THEN COALESCE(pg_catalog.pg_sequence_last_value(q.name::pg_catalog.regclass), 0)
                                ELSE pg_catalog.currval(q.name::pg_catalog.regclass) END
                    FROM (SELECT pg_catalog.pg_get_serial_sequence($5, 'seq') AS name) q) AS last,
                   ARRAY(SELECT b.ord FROM b
                         WHERE GREATEST((SELECT h.horizon_seq FROM {schema}.sync_bucket_horizons h WHERE h.bucket_id = b.bucket_id),
                                        (SELECT h.horizon_seq FROM {schema}.sync_bucket_horizons h WHERE h.bucket_id = '')) > b.after
                         ORDER BY b.ord) AS passed)
        SELECT 0, s.high, NULL::bytea, NULL::bytea, NULL::int2, s.last, s.passed FROM s
        UNION ALL
        SELECT b.ord, c.seq, pg_catalog.convert_to(c.table_name, 'UTF8'), pg_catalog.convert_to(c.record_id, 'UTF8'), c.operation, NULL::int8, NULL::int4[]
        FROM b CROSS JOIN LATERAL (
            SELECT c.seq, c.table_name, c.record_id, c.operation FROM {schema}.sync_changelog c
            WHERE c.bucket_id = b.bucket_id AND c.seq > b.after AND c.seq <= $4
            ORDER BY c.seq
            LIMIT $3) c
        WHERE (SELECT s.last >= $6 AND pg_catalog.cardinality(s.passed) = 0 FROM s)
        """;
}
