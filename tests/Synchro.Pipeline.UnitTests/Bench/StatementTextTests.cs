using Synchro.Pipeline.LoadHarness.Reporting;
using Synchro.Pipeline.LoadHarness.ServerCost;
using Synchro.Pipeline.LoadHarness.Statements;

namespace Synchro.Pipeline.Tests.Bench;

/// <summary>The load harness's pg_stat_statements figures: statement texts on one line, numbered cursors folded, pgbench told apart, the per-phase table.</summary>
public sealed class StatementTextTests
{
    [Fact]
    public void A_statement_is_one_line_with_single_spaces()
        => Assert.Equal("SELECT a, b FROM t WHERE x = $1", StatementText.OneLine("  SELECT a,\n\tb\r\n   FROM t\n WHERE x = $1 \n"));

    [Theory]
    [InlineData("DECLARE synchro_cascade_12 NO SCROLL CURSOR FOR SELECT 1", "DECLARE synchro_cascade_N NO SCROLL CURSOR FOR SELECT 1")]
    [InlineData("FETCH FORWARD 5000 FROM synchro_cascade_3", "FETCH FORWARD 5000 FROM synchro_cascade_N")]
    [InlineData("CLOSE\n  synchro_cascade_40", "CLOSE synchro_cascade_N")]
    [InlineData("FETCH FORWARD 5000 FROM \"synchro_cascade_7\"", "FETCH FORWARD 5000 FROM \"synchro_cascade_N\"")]
    // Parameters, literals, and names without a numbered tail stay as they are.
    [InlineData("SELECT x FROM t WHERE id = ANY($1::bigint[]) LIMIT 5000", "SELECT x FROM t WHERE id = ANY($1::bigint[]) LIMIT 5000")]
    [InlineData("SELECT last_value FROM orders_id_seq", "SELECT last_value FROM orders_id_seq")]
    [InlineData("SELECT 'row_12'::text", "SELECT 'row_12'::text")]
    [InlineData("SELECT 'it''s row_12', x_2 FROM t", "SELECT 'it''s row_12', x_N FROM t")]
    [InlineData("SELECT ab_2c FROM t", "SELECT ab_2c FROM t")]
    public void Numbered_names_fold_into_one(string query, string folded)
        => Assert.Equal(folded, StatementText.Fold(query));

    [Theory]
    [InlineData("INSERT INTO orders (user_id, title) VALUES ($1 || $2, $3 || $4)", nameof(StatementOrigin.Workload))]
    [InlineData("INSERT INTO order_lines (order_id, product, qty) VALUES (currval($1), $2 || $3, $4)", nameof(StatementOrigin.Workload))]
    [InlineData("UPDATE orders SET total = total + $1 WHERE id = (SELECT last_value FROM orders_id_seq) - $2", nameof(StatementOrigin.Workload))]
    [InlineData("update \"public\".\"order_lines\" set qty = qty + $1", nameof(StatementOrigin.Workload))]
    [InlineData("BEGIN", nameof(StatementOrigin.Shared))]
    [InlineData("COMMIT", nameof(StatementOrigin.Shared))]
    [InlineData("commit;", nameof(StatementOrigin.Shared))]
    [InlineData("BEGIN TRANSACTION ISOLATION LEVEL READ COMMITTED", nameof(StatementOrigin.Pipeline))]
    // The pipeline reads the bench tables and writes its own.
    [InlineData("SELECT \"id\"::text, \"user_id\"::text FROM \"public\".\"orders\" WHERE \"id\" = ANY($1::bigint[])", nameof(StatementOrigin.Pipeline))]
    [InlineData("COPY sync_changelog (bucket_id, table_name, record_id, operation) FROM STDIN (FORMAT BINARY)", nameof(StatementOrigin.Pipeline))]
    [InlineData("DELETE FROM sync_bucket_edges WHERE (table_name, record_id, bucket_id) IN (SELECT 1)", nameof(StatementOrigin.Pipeline))]
    [InlineData("INSERT INTO orders_archive SELECT 1", nameof(StatementOrigin.Pipeline))]
    [InlineData("BEGINNING", nameof(StatementOrigin.Pipeline))]
    public void Pgbenchs_writes_to_the_bench_tables_are_the_workload(string query, string origin)
        => Assert.Equal(origin, StatementText.Origin(query).ToString());

    [Fact]
    public void A_long_statement_is_cut_with_an_ellipsis()
    {
        var cut = StatementText.Shown(new string('x', 500));
        Assert.Equal(StatementText.ShownLength, cut.Length);
        Assert.EndsWith("…", cut, StringComparison.Ordinal);
        Assert.Equal("SELECT 1", StatementText.Shown("SELECT 1"));
    }

    [Fact]
    public void Statements_that_would_read_the_same_once_cut_are_shown_whole()
    {
        var prefix = "SELECT s.* FROM " + new string('k', 150);
        string[] queries = [prefix + " user_id", prefix + " deleted_at", "COPY x " + new string('y', 200), "SELECT 1"];

        var shown = StatementText.Shown(queries);

        Assert.Equal([queries[0], queries[1], StatementText.Shown(queries[2]), "SELECT 1"], shown);
        Assert.Equal(StatementText.ShownLength, shown[2].Length);
    }

    [Fact]
    public void Numbered_cursors_are_summed_into_one_row_and_each_origin_keeps_its_most_expensive()
    {
        var costs = PgStatStatements.Summarise(
        [
            ("FETCH FORWARD 5000 FROM synchro_cascade_1", 2, 1.5, 100),
            ("FETCH FORWARD 5000\nFROM synchro_cascade_2", 3, 2.5, 50),
            ("COPY sync_changelog (bucket_id) FROM STDIN (FORMAT BINARY)", 8, 36.0, 4000),
            ("INSERT INTO orders (user_id, title) VALUES ($1 || $2, $3 || $4)", 1000, 60.0, 1000),
        ]);

        Assert.Equal(100.0, costs.TotalMilliseconds, 9);
        Assert.Equal(3, costs.Statements);
        var fetch = Assert.Single(costs.Top, s => s.Query == "FETCH FORWARD 5000 FROM synchro_cascade_N");
        Assert.Equal((5L, 4.0, 150L), (fetch.Calls, fetch.TotalMilliseconds, fetch.Rows));
        Assert.Equal(0.8, fetch.MeanMilliseconds, 9);
        Assert.Equal(30.0, fetch.RowsPerCall, 9);
        Assert.Equal(0.04, costs.Share(fetch)!.Value, 9);
        Assert.Equal(
            [StatementOrigin.Pipeline, StatementOrigin.Pipeline, StatementOrigin.Workload],
            costs.Top.Select(s => s.Origin));
        Assert.StartsWith("COPY sync_changelog", costs.Top[0].Query, StringComparison.Ordinal);
    }

    [Fact]
    public void The_report_shows_the_pipelines_statements_then_pgbenchs_apart()
    {
        var costs = PgStatStatements.Summarise(
        [
            ("COPY sync_changelog (bucket_id) FROM STDIN (FORMAT BINARY)", 8, 30.0, 4000),
            ("SELECT a | b FROM t", 1, 10.0, 1),
            ("UPDATE orders SET total = total + $1 WHERE id = $2", 500, 60.0, 500),
        ]);
        var md = StatementsMarkdown.Render([("ours_end_to_end", new ServerCostResult { Statements = costs }), ("no statements", new ServerCostResult())]);

        var lines = md.Split('\n');
        var pipeline = Array.FindIndex(lines, l => l.StartsWith("| pipeline", StringComparison.Ordinal));
        var workload = Array.FindIndex(lines, l => l.StartsWith("| pgbench", StringComparison.Ordinal));
        Assert.True(pipeline >= 0 && workload > pipeline);
        Assert.Equal("| `COPY sync_changelog (bucket_id) FROM STDIN (FORMAT BINARY)` | 8 | 30.0 | 3.750 | 4,000 | 500.0 | 30.0 % |", lines[pipeline + 2]);
        Assert.Contains("| `SELECT a \\| b FROM t` | 1 |", lines[pipeline + 3], StringComparison.Ordinal);
        Assert.StartsWith("| `UPDATE orders", lines[workload + 2], StringComparison.Ordinal);
        Assert.Single(lines, l => l.StartsWith("Statements, ", StringComparison.Ordinal));
    }
}
