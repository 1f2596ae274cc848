using Synchro.Pipeline.Tests.Infrastructure;

namespace Synchro.Pipeline.Tests.Cli;

/// <summary><c>--binary-tuples</c> reaches the pipeline's options: <c>check</c> then runs binary tuple mode's start-up check.</summary>
[Collection(PostgresCollection.Name)]
public sealed class BinaryTuplesFlagTests(PostgresServerFixture postgres)
{
    private const int Configuration = 3;

    [Fact]
    public async Task Check_with_binary_tuples_names_a_column_binary_mode_cannot_convert()
    {
        var connectionString = await postgres.CreateDatabaseAsync("cli_binary");
        await Sql.ExecuteAsync(connectionString, """
            CREATE TABLE orders (id int PRIMARY KEY, user_id numeric, deleted_at timestamptz);
            CREATE PUBLICATION cli_binary_pub FOR TABLE orders;
            """);
        string[] arguments = ["check", "--connection", connectionString, "--slot", "slot_cli_binary", "--publication", "cli_binary_pub"];
        using var directory = new WorkingDirectory();
        directory.WriteFile("""{ "Synchro": { "Tables": { "orders": { "OwnerColumn": "user_id" } } } }""");

        var text = await CliProcess.RunInAsync(directory.Path, null, arguments);
        var binary = await CliProcess.RunInAsync(directory.Path, null, [.. arguments, "--binary-tuples"]);

        Assert.True(text.ExitCode == 0, text.ToString());
        Assert.True(binary.ExitCode == Configuration, binary.ToString());
        Assert.Contains("Column 'user_id' of table \"public\".\"orders\" is of type numeric, which binary tuple mode cannot turn into its text form", binary.Output, StringComparison.Ordinal);
        Assert.Contains("Turn BinaryTupleMode off, or register a column of a supported type.", binary.Output, StringComparison.Ordinal);
    }
}
