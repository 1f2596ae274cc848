using Synchro.Pipeline.Tests.Infrastructure;

namespace Synchro.Pipeline.Tests.Cli;

/// <summary><c>--skip-initial-snapshot</c> turns the load off (<c>check</c> says what <c>run</c> would do).</summary>
[Collection(PostgresCollection.Name)]
public sealed class InitialSnapshotFlagTests(PostgresServerFixture postgres)
{
    private const string LoadNotice = "Before streaming, it loads the bucket edges of the rows the registered tables hold then";

    [Fact]
    public async Task Check_announces_the_initial_snapshot_unless_the_flag_skips_it()
    {
        var connectionString = await postgres.CreateDatabaseAsync("cli_skip_snapshot");
        await Sql.ExecuteAsync(connectionString, """
            CREATE TABLE orders (id int PRIMARY KEY, user_id text, deleted_at timestamptz);
            CREATE PUBLICATION cli_pub FOR TABLE orders;
            """);
        string[] arguments = ["check", "--connection", connectionString, "--slot", "slot_cli_skip", "--publication", "cli_pub"];
        using var directory = new WorkingDirectory();
        directory.WriteFile("""{ "Synchro": { "Tables": { "orders": { "OwnerColumn": "user_id" } } } }""");

        var loading = await CliProcess.RunInAsync(directory.Path, null, arguments);
        var skipping = await CliProcess.RunInAsync(directory.Path, null, [.. arguments, "--skip-initial-snapshot"]);

        Assert.True(loading.ExitCode == 0, loading.ToString());
        Assert.Contains(LoadNotice, loading.Output, StringComparison.Ordinal);
        Assert.True(skipping.ExitCode == 0, skipping.ToString());
        Assert.Contains("Replication slot 'slot_cli_skip' does not exist yet", skipping.Output, StringComparison.Ordinal);
        Assert.DoesNotContain(LoadNotice, skipping.Output, StringComparison.Ordinal);
    }
}
