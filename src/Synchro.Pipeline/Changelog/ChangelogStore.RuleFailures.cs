using Npgsql;
using Synchro.Pipeline.Postgres;

namespace Synchro.Pipeline.Changelog;

internal static partial class ChangelogStore
{
    // Replay and the writer must not interleave: the writer's edge diff assumes it is the only writer of the edges, and
    // seq must follow commit order. The writer reads the edges (ACCESS SHARE, held to its commit) before it writes any
    // changelog row, so this lock waits for a writer transaction in progress and holds the next one back until replay commits.
    private const string LockEdgesSql = "LOCK TABLE sync_bucket_edges IN ACCESS EXCLUSIVE MODE";

    private const string LoadRuleFailuresSql = """
        SELECT id, table_name, record_id, operation, payload::text
        FROM sync_rule_failures WHERE id > $1 ORDER BY id LIMIT $2 FOR UPDATE
        """;

    private const string DeleteRuleFailuresSql = "DELETE FROM sync_rule_failures WHERE id = ANY($1::bigint[])";

    private const string UpdateRuleFailuresSql = """
        UPDATE sync_rule_failures f SET error_text = u.error_text
        FROM ROWS FROM (pg_catalog.unnest($1::bigint[]), pg_catalog.unnest($2::text[])) AS u(id, error_text) WHERE f.id = u.id
        """;

    /// <summary>Takes the lock that keeps the pipeline's writer out until the caller's transaction ends.</summary>
    public static Task LockEdgesAsync(NpgsqlConnection connection, CancellationToken ct) => ExecuteAsync(connection, LockEdgesSql, ct);

    /// <summary>Up to <paramref name="limit"/> rule failures after id <paramref name="afterId"/>, in id order, locked for the caller's transaction.</summary>
    public static async Task<List<StoredRuleFailure>> LoadRuleFailuresAsync(NpgsqlConnection connection, long afterId, int limit, CancellationToken ct)
    {
        var failures = new List<StoredRuleFailure>();
        var command = new NpgsqlCommand(LoadRuleFailuresSql, connection) { Parameters = { Parameter(afterId), Parameter(limit) } };
        await using (command.ConfigureAwait(false))
        {
            var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                while (await reader.ReadAsync(ct).ConfigureAwait(false))
                {
                    failures.Add(new StoredRuleFailure(
                        reader.GetInt64(0), reader.GetString(1), reader.GetString(2), (ChangeOperation)reader.GetInt16(3), reader.IsDBNull(4) ? null : reader.GetString(4)));
                }
            }
        }
        return failures;
    }

    /// <summary>Deletes the <paramref name="resolved"/> failures and gives the <paramref name="failing"/> ones their new error text.</summary>
    public static async Task ResolveRuleFailuresAsync(NpgsqlConnection connection, IReadOnlyList<long> resolved, IReadOnlyList<(long Id, string ErrorText)> failing, CancellationToken ct)
    {
        if (resolved.Count > 0)
            await ExecuteAsync(connection, DeleteRuleFailuresSql, ct, Parameter(resolved.ToArray())).ConfigureAwait(false);
        if (failing.Count > 0)
        {
            await ExecuteAsync(connection, UpdateRuleFailuresSql, ct, Parameter(failing.Select(f => f.Id).ToArray()),
                    Parameter(failing.Select(f => PgText.Storable(f.ErrorText, MaxErrorTextChars)).ToArray()))
                .ConfigureAwait(false);
        }
    }
}

/// <summary>A <c>sync_rule_failures</c> row as stored.</summary>
internal sealed record StoredRuleFailure(long Id, string TableName, string RecordId, ChangeOperation Operation, string? PayloadJson);
