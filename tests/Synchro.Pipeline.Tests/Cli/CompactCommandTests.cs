using Synchro.Pipeline.Tests.Changelog;
using Synchro.Pipeline.Tests.Infrastructure;

namespace Synchro.Pipeline.Tests.Cli;

/// <summary><c>synchro-pipeline compact</c>: one run with the given retention and chunk size, and what it prints.</summary>
[Collection(PostgresCollection.Name)]
public sealed class CompactCommandTests(PostgresServerFixture postgres)
{
    [Fact]
    public async Task Compact_removes_superseded_rows_and_old_deletes_and_prints_what_it_did()
    {
        var connectionString = await SidecarDatabase.CreateAsync(postgres, "cli_compact");
        await Sql.ExecuteAsync(connectionString, """
            INSERT INTO sync_changelog (bucket_id, table_name, record_id, operation, created_at) VALUES
                ('user:a', 'public.orders', '1', 1, now() - interval '3 days'),
                ('user:a', 'public.orders', '1', 3, now() - interval '2 days'),
                ('user:a', 'public.orders', '2', 1, now() - interval '2 days'),
                ('user:b', 'public.orders', '3', 1, now()),
                ('user:b', 'public.orders', '3', 2, now());
            """);

        var result = await CliProcess.RunAsync("compact", "--connection", connectionString, "--delete-retention", "1d", "--chunk-rows", "2");

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains("2 bucket(s) visited, 3 row(s) removed (2 superseded, 1 delete(s) older than 1.00:00:00), 1 horizon(s) raised", result.Output, StringComparison.Ordinal);
        Assert.Equal(["3 user:a", "5 user:b"], await Sql.RowsAsync(connectionString, "SELECT seq || ' ' || bucket_id FROM sync_changelog ORDER BY seq"));
        Assert.Equal(2L, await Sql.ScalarAsync<long>(connectionString, "SELECT horizon_seq FROM sync_bucket_horizons WHERE bucket_id = 'user:a'"));
    }

    [Fact]
    public async Task Compact_refuses_a_malformed_retention_naming_the_setting()
    {
        var connectionString = await SidecarDatabase.CreateAsync(postgres, "cli_compact_bad");

        var result = await CliProcess.RunAsync("compact", "--connection", connectionString, "--delete-retention", "10");

        Assert.Equal(3, result.ExitCode);
        Assert.Contains("Synchro:DeleteRetention", result.Output + result.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Compact_help_names_its_options()
    {
        var result = await CliProcess.RunAsync("compact", "--help");

        Assert.Equal(0, result.ExitCode);
        foreach (var option in new[] { "--delete-retention", "--chunk-rows", "--max-tracked-records", "--full", "--connection" })
            Assert.Contains(option, result.Output, StringComparison.Ordinal);
    }
}
