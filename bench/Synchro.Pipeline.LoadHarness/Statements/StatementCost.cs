using System.Text.Json.Serialization;

namespace Synchro.Pipeline.LoadHarness.Statements;

/// <summary>Who ran a statement: the bench's pgbench workload, or the rest (our pipeline, the contenders, the harness's own queries).</summary>
[JsonConverter(typeof(JsonStringEnumConverter<StatementOrigin>))]
internal enum StatementOrigin
{
    [JsonStringEnumMemberName("pipeline")]
    Pipeline,

    /// <summary>pgbench's writes to the bench tables; nothing else writes <c>orders</c> or <c>order_lines</c>.</summary>
    [JsonStringEnumMemberName("workload")]
    Workload,

    /// <summary>Transaction control (<c>BEGIN</c>, <c>COMMIT</c>): pgbench's and the pipeline's in one row.</summary>
    [JsonStringEnumMemberName("shared")]
    Shared,
}

/// <summary>One statement's (or one folded group's) figures over a phase, from <c>pg_stat_statements</c>.</summary>
internal sealed record StatementCost(StatementOrigin Origin, string Query, long Calls, double TotalMilliseconds, long Rows)
{
    public double MeanMilliseconds => Calls > 0 ? TotalMilliseconds / Calls : 0;
    public double RowsPerCall => Calls > 0 ? (double)Rows / Calls : 0;
}

/// <summary>
/// What the server executed over one phase (<c>pg_stat_statements</c>, reset at the phase's start): the statements with
/// the most execution time, and the execution time of all of them.
/// </summary>
internal sealed record StatementCosts
{
    /// <summary>Execution time of every statement the phase ran, the ones left out of <see cref="Top"/> included.</summary>
    public double TotalMilliseconds { get; init; }

    /// <summary>Distinct statements after folding (<see cref="StatementText.Fold"/>).</summary>
    public int Statements { get; init; }

    /// <summary>The most expensive statements by total execution time, per origin, largest first.</summary>
    public IReadOnlyList<StatementCost> Top { get; init; } = [];

    /// <summary>The share of the phase's execution time of <paramref name="statement"/>.</summary>
    public double? Share(StatementCost statement) => TotalMilliseconds > 0 ? statement.TotalMilliseconds / TotalMilliseconds : null;
}
