using Npgsql;
using Synchro.Pipeline.LocalPostgres;

namespace Synchro.Pipeline.LoadHarness.Statements;

/// <summary>
/// The <c>pg_stat_statements</c> extension on the harness's server (<c>--statements</c>): preloaded at the server's start,
/// created in the bench database, reset at a phase's start and read at its end by the server-cost sampler.
/// </summary>
/// <remarks>
/// Its counters are cluster-wide (every database, every backend), so the harness's own pollers run with
/// <c>pg_stat_statements.track = none</c> (<see cref="ServerCost.ServerCostSampler.SamplerConnectionString"/>).
/// </remarks>
internal static class PgStatStatements
{
    public const string Library = "pg_stat_statements";

    // Statements kept per origin in a phase's result; the rest count in its total only.
    private const int KeptPerOrigin = 15;

    /// <summary>The server's options with the extension preloaded.</summary>
    public static void Preload(LocalPostgresOptions options) => options.Settings["shared_preload_libraries"] = Library;

    /// <summary>
    /// Starts the server with the extension preloaded; a build without it (its library is not in the server's
    /// <c>lib</c> directory) fails with a message that says so.
    /// </summary>
    public static async Task<LocalPostgresServer> StartServerAsync(LocalPostgresOptions options, CancellationToken ct)
    {
        try
        {
            return await LocalPostgresServer.StartAsync(options, ct);
        }
        catch (LocalPostgresException e) when (e.Message.Contains($"\"{Library}\"", StringComparison.Ordinal))
        {
            throw new InvalidOperationException(
                $"--statements: this PostgreSQL build has no {Library} library, so the server cannot preload it. Use a build that ships it "
                + $"(Debian's postgresql-15: /usr/lib/postgresql/15/lib/{Library}.so; the npm builds in /var/cache/synchro-pipeline carry it in lib/postgresql), "
                + $"or run without --statements. The server said:\n{e.Message}", e);
        }
    }

    /// <summary><c>CREATE EXTENSION</c> in the database of <paramref name="connectionString"/>, where the sampler reads the view.</summary>
    public static async Task CreateAsync(string connectionString, CancellationToken ct)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync(ct);
        await using var create = new NpgsqlCommand($"CREATE EXTENSION IF NOT EXISTS {Library}", connection);
        await create.ExecuteNonQueryAsync(ct);
    }

    /// <summary>Forgets every statement: the phase starts from zero.</summary>
    public static async Task ResetAsync(NpgsqlConnection connection, CancellationToken ct)
    {
        await using var reset = new NpgsqlCommand("SELECT pg_stat_statements_reset()", connection);
        await reset.ExecuteNonQueryAsync(ct);
    }

    /// <summary>Every statement since the reset, folded (<see cref="StatementText.Fold"/>); the most expensive kept per origin.</summary>
    public static async Task<StatementCosts> ReadAsync(NpgsqlConnection connection, CancellationToken ct)
    {
        var rows = new List<(string Query, long Calls, double TotalMilliseconds, long Rows)>();
        await using (var read = new NpgsqlCommand("SELECT query, calls, total_exec_time, rows FROM pg_stat_statements WHERE query IS NOT NULL", connection))
        await using (var reader = await read.ExecuteReaderAsync(ct))
        {
            while (await reader.ReadAsync(ct))
                rows.Add((reader.GetString(0), reader.GetInt64(1), reader.GetDouble(2), reader.GetInt64(3)));
        }
        return Summarise(rows);
    }

    /// <summary>Folds the view's rows into one per statement and keeps the most expensive per origin.</summary>
    internal static StatementCosts Summarise(IEnumerable<(string Query, long Calls, double TotalMilliseconds, long Rows)> rows)
    {
        var folded = rows
            .GroupBy(r => StatementText.Fold(r.Query))
            .Select(g => new StatementCost(StatementText.Origin(g.Key), g.Key, g.Sum(r => r.Calls), g.Sum(r => r.TotalMilliseconds), g.Sum(r => r.Rows)))
            .ToList();
        return new StatementCosts
        {
            TotalMilliseconds = folded.Sum(s => s.TotalMilliseconds),
            Statements = folded.Count,
            Top = [.. folded.GroupBy(s => s.Origin).OrderBy(g => g.Key)
                .SelectMany(g => g.OrderByDescending(s => s.TotalMilliseconds).ThenBy(s => s.Query, StringComparer.Ordinal).Take(KeptPerOrigin))],
        };
    }
}
