using Npgsql;
using Synchro.Pipeline.Postgres;

namespace Synchro.Pipeline.Changelog;

/// <summary>
/// Reads and writes the sidecar tables (<see cref="ChangelogSchema"/>): one database concern per method,
/// each one statement or one COPY, whatever the number of rows.
/// </summary>
/// <remarks>
/// Every method runs on the caller's open connection and inside the caller's transaction, if any (Npgsql
/// enlists commands on a connection in its active transaction), so a batch's changelog rows, edges, rule
/// failures and position commit or roll back together. SQL text is constant; values travel as positional
/// parameters (<c>$1</c>…), which work whether or not the application turned off Npgsql's SQL rewriting.
/// Empty inputs make no round trip.
/// </remarks>
internal static partial class ChangelogStore
{
    internal const string CopyChangelogSql =
        "COPY sync_changelog (bucket_id, table_name, record_id, operation) FROM STDIN (FORMAT BINARY)";

    private const string InsertRuleFailuresSql = """
        INSERT INTO sync_rule_failures (table_name, record_id, operation, error_text, payload)
        SELECT f.table_name, f.record_id, f.operation, f.error_text, f.payload::jsonb
        FROM ROWS FROM (pg_catalog.unnest($1::text[]), pg_catalog.unnest($2::text[]), pg_catalog.unnest($3::smallint[]), pg_catalog.unnest($4::text[]), pg_catalog.unnest($5::text[]))
            AS f(table_name, record_id, operation, error_text, payload)
        """;

    /// <summary>The longest error text a rule failure keeps, in characters; a longer one is cut and marked.</summary>
    public const int MaxErrorTextChars = 4_096;

    /// <summary>Appends <paramref name="failures"/> to <c>sync_rule_failures</c> with one statement.</summary>
    /// <remarks>
    /// Invariant 7 of docs/architecture.md: this cannot fail on data. Texts are made storable here (a NUL or an unpaired
    /// surrogate in an assigner's exception message replaced, an error text cut at <see cref="MaxErrorTextChars"/>); payloads
    /// come from <see cref="Buckets.RowJson.Payload"/>, bounded JSON that <c>jsonb</c> holds.
    /// </remarks>
    public static async Task WriteRuleFailuresAsync(NpgsqlConnection connection, IReadOnlyList<RuleFailure> failures, CancellationToken ct)
    {
        if (failures.Count == 0)
            return;
        var tables = new string[failures.Count];
        var records = new string[failures.Count];
        var operations = new short[failures.Count];
        var errors = new string[failures.Count];
        var payloads = new string?[failures.Count];
        for (var i = 0; i < failures.Count; i++)
        {
            var failure = failures[i];
            tables[i] = failure.TableName;
            records[i] = PgText.Storable(failure.RecordId, int.MaxValue);
            operations[i] = (short)failure.Operation;
            errors[i] = PgText.Storable(failure.ErrorText, MaxErrorTextChars);
            payloads[i] = failure.PayloadJson;
        }
        await ExecuteAsync(connection, InsertRuleFailuresSql, ct, Parameter(tables), Parameter(records), Parameter(operations), Parameter(errors), Parameter(payloads))
            .ConfigureAwait(false);
    }

    private static NpgsqlParameter<T> Parameter<T>(T value) => new() { TypedValue = value };

    private static async Task ExecuteAsync(NpgsqlConnection connection, string sql, CancellationToken ct, params NpgsqlParameter[] parameters)
    {
        var command = new NpgsqlCommand(sql, connection);
        await using (command.ConfigureAwait(false))
        {
            command.Parameters.AddRange(parameters);
            await command.ExecuteNonQueryAsync(ct).ConfigureAwait(false);
        }
    }
}
