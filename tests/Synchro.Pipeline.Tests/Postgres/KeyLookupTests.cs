using Npgsql;
using NpgsqlTypes;
using Synchro.Pipeline.Changelog;
using Synchro.Pipeline.Postgres;
using Synchro.Pipeline.Tests.Changelog;
using Synchro.Pipeline.Tests.Infrastructure;

namespace Synchro.Pipeline.Tests.Postgres;

/// <summary>Lookups by key are index probes whatever the planner's statistics say, and a join only where no index can serve them.</summary>
[Collection(PostgresCollection.Name)]
public sealed class KeyLookupTests(PostgresServerFixture postgres)
{
    // Statistics taken while the table held 100 rows, then 100k more inserted with autovacuum off: the planner believes the
    // table is tiny and each key matches many rows, as it did for a growing child table under the load harness's steady state.
    private const string StaleTableSql = """
        CREATE TABLE lines (id bigint PRIMARY KEY, order_id bigint NOT NULL, note text, region text, code int) WITH (autovacuum_enabled = off);
        CREATE INDEX lines_order ON lines (order_id);
        CREATE INDEX lines_region_code ON lines (region, code);
        CREATE INDEX lines_partial ON lines (code) WHERE code > 0;
        CREATE INDEX lines_expression ON lines ((note || 'x'));
        INSERT INTO lines SELECT g, g % 10, 'n' || g, 'r' || (g % 3), g FROM generate_series(1, 100) g;
        ANALYZE lines;
        INSERT INTO lines SELECT g, g / 2, 'n' || g, 'r' || (g % 3), g FROM generate_series(101, 100100) g;
        CREATE TABLE plain (id bigint NOT NULL, order_id bigint NOT NULL);
        """;

    [Fact]
    public async Task Finds_the_indexes_that_lead_with_exactly_the_key_columns()
    {
        await using var connection = await OpenAsync("key_lookup_index");

        Assert.True(await KeyLookup.HasLeadingIndexAsync(connection, "public.lines", ["id"], default));
        Assert.True(await KeyLookup.HasLeadingIndexAsync(connection, "public.lines", ["order_id"], default));
        Assert.True(await KeyLookup.HasLeadingIndexAsync(connection, "public.lines", ["code", "region"], default));
        Assert.True(await KeyLookup.HasLeadingIndexAsync(connection, "public.lines", ["region"], default));
        // Second column only, a partial index, an expression index, no index at all.
        Assert.False(await KeyLookup.HasLeadingIndexAsync(connection, "public.lines", ["code"], default));
        Assert.False(await KeyLookup.HasLeadingIndexAsync(connection, "public.lines", ["note"], default));
        Assert.False(await KeyLookup.HasLeadingIndexAsync(connection, "public.plain", ["order_id"], default));
    }

    [Fact]
    public async Task The_probe_form_reads_by_index_where_stale_statistics_make_the_join_read_the_whole_table()
    {
        await using var connection = await OpenAsync("key_lookup_plan");
        KeyLookup.Key[] key = [new("order_id", "bigint")];
        string[] list = ["t.id::text", "t.order_id::text"];
        var keys = Enumerable.Range(0, 60).Select(i => (long)(i * 997 % 50_000)).Append(5).ToArray();

        var join = await PlanAsync(connection, KeyLookup.Select(list, "public.lines", key, probe: false), keys);
        var probe = await PlanAsync(connection, KeyLookup.Select(list, "public.lines", key, probe: true), keys);

        Assert.Contains("Seq Scan on lines", join);
        Assert.DoesNotContain("Seq Scan", probe);
        Assert.Contains("lines_order", probe);
        // Same rows; a key given twice (5) finds its rows once in the probe form.
        var joined = await RowsAsync(connection, KeyLookup.Select(list, "public.lines", key, probe: false), keys);
        var probed = await RowsAsync(connection, KeyLookup.Select(list, "public.lines", key, probe: true), keys);
        Assert.Equal(joined.Distinct().Order(StringComparer.Ordinal), probed.Order(StringComparer.Ordinal));
        Assert.Equal(probed.Count, probed.Distinct().Count());
        Assert.True(probed.Count > 100);
    }

    [Fact]
    public async Task Edge_deletes_probe_the_primary_key_whatever_the_statistics()
    {
        var connectionString = await SidecarDatabase.CreateAsync(postgres, "key_lookup_edges");
        await using var connection = await SidecarDatabase.OpenAsync(connectionString);
        await SidecarDatabase.ExecuteAsync(connection, """
            ALTER TABLE sync_bucket_edges SET (autovacuum_enabled = off);
            INSERT INTO sync_bucket_edges (table_name, record_id, bucket_id) SELECT 'public.orders', g::text, 'user:' || g FROM generate_series(1, 10) g;
            ANALYZE sync_bucket_edges;
            INSERT INTO sync_bucket_edges (table_name, record_id, bucket_id) SELECT 'public.orders', g::text, 'user:' || (g % 500) FROM generate_series(11, 100010) g;
            """);
        var removed = Enumerable.Range(0, 200).Select(i => (new RecordKey("public.orders", (i * 311 + 11).ToString("D", null)), "user:" + ((i * 311 + 11) % 500))).ToList();
        await using (var explain = new NpgsqlCommand("EXPLAIN " + ChangelogStore.DeleteEdgesSql, connection))
        {
            explain.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = [.. removed.Select(e => e.Item1.TableName)] });
            explain.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = [.. removed.Select(e => e.Item1.RecordId)] });
            explain.Parameters.Add(new NpgsqlParameter<string[]> { TypedValue = [.. removed.Select(e => e.Item2)] });
            var plan = string.Join('\n', await ReadAllAsync(explain));
            Assert.DoesNotContain("Seq Scan", plan);
            Assert.Contains("Tid Scan", plan);
            // Either index holds all three columns: one probe per edge.
            Assert.Matches(@"Nested Loop[\s\S]*Index (Only )?Scan using \w+ on sync_bucket_edges", plan);
        }

        await using var transaction = await connection.BeginTransactionAsync();
        await ChangelogStore.ApplyEdgesAsync(connection, [], removed, default);
        await transaction.CommitAsync();
        Assert.Equal(100_010L - 200, await SidecarDatabase.CountAsync(connection, "sync_bucket_edges"));
        Assert.Equal(0L, await SidecarDatabase.ScalarAsync(connection, "SELECT count(*) FROM sync_bucket_edges WHERE record_id = ANY($1)", [removed.Select(e => e.Item1.RecordId).ToArray()]));
    }

    private async Task<NpgsqlConnection> OpenAsync(string prefix)
    {
        var connection = await SidecarDatabase.OpenAsync(await postgres.CreateDatabaseAsync(prefix));
        await SidecarDatabase.ExecuteAsync(connection, StaleTableSql);
        return connection;
    }

    private static async Task<string> PlanAsync(NpgsqlConnection connection, string sql, long[] keys)
    {
        await using var command = new NpgsqlCommand("EXPLAIN " + sql, connection) { Parameters = { Keys(keys) } };
        return string.Join('\n', await ReadAllAsync(command));
    }

    private static async Task<List<string>> RowsAsync(NpgsqlConnection connection, string sql, long[] keys)
    {
        await using var command = new NpgsqlCommand(sql, connection) { Parameters = { Keys(keys) } };
        return await ReadAllAsync(command, separator: "|");
    }

    // As the pipeline sends them: text values cast by the statement to the column's type.
    private static NpgsqlParameter Keys(long[] keys)
        => new NpgsqlParameter<string[]> { TypedValue = [.. keys.Select(k => k.ToString("D", null))], NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text };

    private static async Task<List<string>> ReadAllAsync(NpgsqlCommand command, string separator = "")
    {
        var rows = new List<string>();
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
            rows.Add(string.Join(separator, Enumerable.Range(0, reader.FieldCount).Select(i => reader.GetValue(i).ToString())));
        return rows;
    }
}
