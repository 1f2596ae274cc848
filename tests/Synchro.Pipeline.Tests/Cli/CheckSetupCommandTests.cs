using Synchro.Pipeline.Tests.Infrastructure;
using Synchro.Pipeline.Tests.Pipeline;

namespace Synchro.Pipeline.Tests.Cli;

/// <summary><c>synchro-pipeline check</c> as a DBA meets it on a new database (docs/setup.md): a role not yet set up.</summary>
[Collection(PostgresCollection.Name)]
[Trait(TestCategories.Name, TestCategories.VersionSensitive)]
public sealed class CheckSetupCommandTests(PostgresServerFixture postgres)
{
    private const int Configuration = 3;

    [Fact]
    public async Task Check_names_a_role_without_replication_and_a_missing_grant_with_exit_code_3_and_the_statements()
    {
        var database = await postgres.CreateDatabaseAsync("cli_check_setup");
        var role = "cli_setup_" + Guid.NewGuid().ToString("N")[..10];
        await Sql.ExecuteAsync(database, $"""
            CREATE TABLE orders (id int PRIMARY KEY, user_id text, deleted_at timestamptz);
            CREATE PUBLICATION cli_pub FOR TABLE orders;
            CREATE ROLE {role} LOGIN PASSWORD '{PipelineRoles.Password}';
            """);
        using var directory = new WorkingDirectory();
        directory.WriteFile("""{ "Synchro": { "Tables": { "orders": { "OwnerColumn": "user_id" } } } }""");
        string[] arguments = ["check", "--connection", PipelineRoles.As(database, role), "--changelog-connection", database, "--slot", "slot_cli_setup", "--publication", "cli_pub"];

        var result = await CliProcess.RunInAsync(directory.Path, null, arguments);

        Assert.True(result.ExitCode == Configuration, result.ToString());
        Assert.StartsWith("NOT READY: slot slot_cli_setup, publication cli_pub, 1 table(s) on 127.0.0.1:", result.Output, StringComparison.Ordinal);
        Assert.Contains(": 2 problem(s)", result.Output, StringComparison.Ordinal);
        var output = Unwrapped(result.Output);
        Assert.Contains($"Grant it, as a superuser: ALTER ROLE \"{role}\" WITH REPLICATION;", output, StringComparison.Ordinal);
        Assert.Contains($"As their owner: GRANT SELECT ON \"public\".\"orders\" TO \"{role}\";", output, StringComparison.Ordinal);

        await Sql.ExecuteAsync(database, $"ALTER ROLE \"{role}\" WITH REPLICATION; GRANT SELECT ON \"public\".\"orders\" TO \"{role}\";");
        var ready = await CliProcess.RunInAsync(directory.Path, null, arguments);
        Assert.True(ready.ExitCode == 0, ready.ToString());
        Assert.StartsWith("OK: slot slot_cli_setup", ready.Output, StringComparison.Ordinal);
    }

    /// <summary>The output with the terminal's wrapping undone: each problem is one line of words again.</summary>
    private static string Unwrapped(string output) => string.Join(' ', output.Split('\n', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries));
}
