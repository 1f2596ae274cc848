using Npgsql;

namespace Synchro.Pipeline.Postgres;

/// <summary>
/// The SQL that finds a table's rows by arrays of key values (one array per key column, <c>$1</c>…), written so that its
/// plan does not depend on the table's statistics when an index can serve it.
/// </summary>
/// <remarks>
/// Invariant: in the probe form (<c>probe</c> in <see cref="Select"/>), every distinct key is one index probe (a <c>LATERAL</c> subquery kept apart by
/// <c>OFFSET 0</c>), whatever the planner believes of the table's size; a join, which the planner may turn into a hash join
/// over the whole table, is written only for keys no index leads with. Measured on the load harness's steady state: with
/// statistics behind a growing table, the join form read every row of the child table for each cascade (12–55 ms a
/// statement), the probe form a few index pages.
/// </remarks>
internal static class KeyLookup
{
    // Valid, complete, non-partial btree (or, for one column, hash) indexes whose first key columns are exactly the given
    // ones, in any order. A column of an expression index has attnum 0 and matches no name.
    private const string LeadingIndexSql = """
        SELECT EXISTS (
            SELECT 1 FROM pg_catalog.pg_index i
            JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid
            JOIN pg_catalog.pg_am am ON am.oid = c.relam
            WHERE i.indrelid = pg_catalog.to_regclass($1) AND i.indisvalid AND i.indisready AND i.indpred IS NULL
              AND (am.amname = 'btree' OR (am.amname = 'hash' AND pg_catalog.cardinality($2::text[]) = 1))
              AND i.indnkeyatts >= pg_catalog.cardinality($2::text[])
              AND (SELECT pg_catalog.array_agg(a.attname::text ORDER BY a.attname::text)
                   FROM pg_catalog.unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
                   JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                   WHERE k.ord <= pg_catalog.cardinality($2::text[]))
                  = (SELECT pg_catalog.array_agg(n ORDER BY n) FROM pg_catalog.unnest($2::text[]) AS n))
        """;

    /// <summary>Whether an index of <paramref name="qualifiedTable"/> leads with exactly <paramref name="columns"/> (in any order).</summary>
    public static async Task<bool> HasLeadingIndexAsync(NpgsqlConnection connection, string qualifiedTable, IReadOnlyList<string> columns, CancellationToken ct)
    {
        var command = new NpgsqlCommand(LeadingIndexSql, connection)
        {
            Parameters =
            {
                new NpgsqlParameter<string> { TypedValue = qualifiedTable },
                new NpgsqlParameter<string[]> { TypedValue = [.. columns] },
            },
        };
        await using (command.ConfigureAwait(false))
            return await command.ExecuteScalarAsync(ct).ConfigureAwait(false) is true;
    }

    /// <summary>A key column of a lookup: its name, its SQL type (the parameter array is cast to it) and whether it is NOT NULL.</summary>
    /// <remarks>A column that may be NULL is matched with <c>IS NOT DISTINCT FROM</c>, which no index serves: only a join reads it.</remarks>
    public readonly record struct Key(string Column, string Type, bool NotNull = true);

    /// <summary>
    /// <c>SELECT</c> of <paramref name="expressions"/> over the rows of <paramref name="from"/> (alias <c>t</c>) whose
    /// <paramref name="keys"/> match one row of the parameter arrays <c>$1</c>… (one per key, text cast to the key's type): per
    /// distinct key an index probe when <paramref name="probe"/>, a join otherwise. A row comes once per distinct key it matches
    /// when probed, once per key it matches when joined.
    /// </summary>
    /// <param name="expressions">Expressions over <c>t</c>, returned in this order.</param>
    /// <param name="from">The quoted, qualified table.</param>
    /// <param name="keys">The key columns, in the order of the parameter arrays.</param>
    /// <param name="probe">Whether an index leads with the key columns (<see cref="HasLeadingIndexAsync"/>), all NOT NULL.</param>
    public static string Select(IEnumerable<string> expressions, string from, IReadOnlyList<Key> keys, bool probe)
    {
        // Aliased, so the probe's subquery can name them.
        var list = string.Join(", ", expressions.Select((e, i) => $"{e} AS c{i}"));
        var unnest = string.Join(", ", keys.Select((key, k) => $"pg_catalog.unnest(${k + 1}::{key.Type}[])"));
        var names = string.Join(", ", keys.Select((_, k) => $"k{k}"));
        var on = string.Join(" AND ", keys.Select((key, k) => $"t.{PgIdentifier.Quote(key.Column)} {(key.NotNull ? "=" : "IS NOT DISTINCT FROM")} k.k{k}"));
        return probe
            ? $"SELECT s.* FROM (SELECT DISTINCT * FROM ROWS FROM ({unnest}) AS u({names})) k CROSS JOIN LATERAL (SELECT {list} FROM {from} t WHERE {on} OFFSET 0) s"
            : $"SELECT {list} FROM {from} t JOIN ROWS FROM ({unnest}) AS k({names}) ON {on}";
    }
}
