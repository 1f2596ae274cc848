using Synchro.Pipeline.Tests.Infrastructure;

namespace Synchro.Pipeline.Tests.Cli;

/// <summary>
/// Flags reach the pipeline's options: <c>check</c> with and without <c>--binary-tuples</c> (binary tuple mode's
/// start-up check) and <c>--skip-initial-snapshot</c> (whether the load is announced).
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class CheckFlagTests(PostgresServerFixture postgres)
{
    private const int Configuration = 3;
    private const string LoadNotice = "Before streaming, it loads the bucket edges of the rows the registered tables hold then";

    [Fact]
    public async Task Check_with_binary_tuples_names_a_column_binary_mode_cannot_convert()
    {
        var (text, binary) = await CheckWithAndWithoutAsync("cli_binary", ownerType: "numeric", "--binary-tuples");

        Assert.True(text.ExitCode == 0, text.ToString());
        Assert.True(binary.ExitCode == Configuration, binary.ToString());
        Assert.Contains("Column 'user_id' of table \"public\".\"orders\" is of type numeric, which binary tuple mode cannot turn into its text form", binary.Output, StringComparison.Ordinal);
        Assert.Contains("Turn BinaryTupleMode off, or register a column of a supported type.", binary.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Check_announces_the_initial_snapshot_unless_the_flag_skips_it()
    {
        var (loading, skipping) = await CheckWithAndWithoutAsync("cli_skip", ownerType: "text", "--skip-initial-snapshot");

        Assert.True(loading.ExitCode == 0, loading.ToString());
        Assert.Contains(LoadNotice, loading.Output, StringComparison.Ordinal);
        Assert.True(skipping.ExitCode == 0, skipping.ToString());
        Assert.Contains("Replication slot 'slot_cli_skip' does not exist yet", skipping.Output, StringComparison.Ordinal);
        Assert.DoesNotContain(LoadNotice, skipping.Output, StringComparison.Ordinal);
    }

    /// <summary>Runs <c>check</c> on a fresh database with an <c>orders</c> table, without and then with <paramref name="flag"/>.</summary>
    private async Task<(CliResult Without, CliResult With)> CheckWithAndWithoutAsync(string name, string ownerType, string flag)
    {
        var connectionString = await postgres.CreateDatabaseAsync(name);
        await Sql.ExecuteAsync(connectionString, $"""
            CREATE TABLE orders (id int PRIMARY KEY, user_id {ownerType}, deleted_at timestamptz);
            CREATE PUBLICATION {name}_pub FOR TABLE orders;
            """);
        string[] arguments = ["check", "--connection", connectionString, "--slot", $"slot_{name}", "--publication", $"{name}_pub"];
        using var directory = new WorkingDirectory();
        directory.WriteFile("""{ "Synchro": { "Tables": { "orders": { "OwnerColumn": "user_id" } } } }""");
        var without = await CliProcess.RunInAsync(directory.Path, null, arguments);
        var with = await CliProcess.RunInAsync(directory.Path, null, [.. arguments, flag]);
        return (without, with);
    }
}
