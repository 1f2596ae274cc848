namespace Synchro.Pipeline.Compaction;

public sealed partial class ChangelogCompactor
{
    /// <summary>The run's statements, with the changelog schema's quoted name in them (no value is ever spliced into SQL).</summary>
    private sealed class Sql(string schema)
    {
        public string LoadState { get; } = $"SELECT compacted_through_seq, purged_through_seq FROM {schema}.sync_compaction_state WHERE id = 1";

        public string SaveState { get; } = $"""
            INSERT INTO {schema}.sync_compaction_state AS s (id, compacted_through_seq, purged_through_seq) VALUES (1, $1, $2)
            ON CONFLICT (id) DO UPDATE SET compacted_through_seq = EXCLUDED.compacted_through_seq,
                purged_through_seq = EXCLUDED.purged_through_seq, updated_at = pg_catalog.now()
            """;

        // Both ends of the primary key, each one index probe; the cut-off by the server's clock, as created_at.
        public string Marks { get; } = $"""
            SELECT COALESCE((SELECT seq FROM {schema}.sync_changelog ORDER BY seq DESC LIMIT 1), 0),
                   COALESCE((SELECT seq FROM {schema}.sync_changelog ORDER BY seq LIMIT 1), 0),
                   pg_catalog.now() - $1
            """;

        public string Probe { get; } = $"SELECT seq, created_at FROM {schema}.sync_changelog WHERE seq >= $1 AND seq <= $2 ORDER BY seq LIMIT 1";

        // A loose index scan over (bucket_id, seq): one index descent per bucket, a page at a time. A bucket is to be visited
        // when it has rows after the last complete run's high-water mark, or delete rows newly past the retention.
        public string FirstBuckets { get; } = Buckets(schema, "");

        public string NextBuckets { get; } = Buckets(schema, "WHERE c.bucket_id > $6");

        public string ReadChunk { get; } = $"""
            SELECT seq, table_name, record_id, operation FROM {schema}.sync_changelog
            WHERE bucket_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3
            """;

        public string Remove { get; } = $"DELETE FROM {schema}.sync_changelog WHERE bucket_id = $1 AND seq = ANY($2)";

        public string RaiseHorizon { get; } = $"""
            INSERT INTO {schema}.sync_bucket_horizons AS h (bucket_id, horizon_seq) VALUES ($1, $2)
            ON CONFLICT (bucket_id) DO UPDATE SET horizon_seq = GREATEST(h.horizon_seq, EXCLUDED.horizon_seq), updated_at = pg_catalog.now()
            """;

        private static string Buckets(string schema, string after) => $"""
            WITH RECURSIVE b(bucket_id) AS (
                (SELECT c.bucket_id FROM {schema}.sync_changelog c {after} ORDER BY c.bucket_id LIMIT 1)
                UNION ALL
                SELECT (SELECT c.bucket_id FROM {schema}.sync_changelog c WHERE c.bucket_id > b.bucket_id ORDER BY c.bucket_id LIMIT 1)
                FROM b WHERE b.bucket_id IS NOT NULL
            )
            SELECT b.bucket_id,
                   EXISTS (SELECT 1 FROM {schema}.sync_changelog c WHERE c.bucket_id = b.bucket_id AND c.seq > $1 AND c.seq <= $2)
                   OR ($4 > $3 AND EXISTS (SELECT 1 FROM {schema}.sync_changelog c
                                           WHERE c.bucket_id = b.bucket_id AND c.seq > $3 AND c.seq <= $4 AND c.operation = 3))
            FROM b WHERE b.bucket_id IS NOT NULL
            LIMIT $5
            """;
    }
}
