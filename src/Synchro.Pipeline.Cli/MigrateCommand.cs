using System.CommandLine;
using Npgsql;
using NpgsqlTypes;
using Synchro.Pipeline.Changelog;
using Synchro.Pipeline.Cli.Configuration;
using Synchro.Pipeline.Cli.Database;
using Synchro.Pipeline.Cli.Output;

namespace Synchro.Pipeline.Cli;

/// <summary><c>synchro-pipeline migrate</c>: creates or completes the sidecar tables on the changelog database and says which it created.</summary>
internal static class MigrateCommand
{
    private const string Name = "migrate";


    private const string ExistingTablesSql = "SELECT t FROM pg_catalog.unnest(@tables) AS t WHERE pg_catalog.to_regclass(t) IS NOT NULL";

    public static Command Create()
    {
        var command = new Command(Name, "Create or upgrade the sidecar tables (sync_changelog, sync_bucket_edges, sync_wal_position, sync_rule_failures) on the changelog database.");
        var settings = new SettingsFlags(command, withPublication: false);
        command.SetAction((parse, ct) => MigrateAsync(parse, settings, ct));
        return command;
    }

    private static async Task<int> MigrateAsync(ParseResult parse, SettingsFlags flags, CancellationToken ct)
    {
        try
        {
            var connectionString = flags.Load(parse).ChangelogConnectionString();
            // The sidecar tables by their plain names, in the changelog schema only, as the pipeline finds them.
            var schema = ChangelogSchema.SchemaOf(connectionString);
            var dataSource = NpgsqlDataSource.Create(ChangelogSchema.PinSearchPath(connectionString));
            await using (dataSource.ConfigureAwait(false))
            {
                var connection = await dataSource.OpenConnectionAsync(ct).ConfigureAwait(false);
                await using (connection.ConfigureAwait(false))
                {
                    var before = await ExistingTablesAsync(connection, ct).ConfigureAwait(false);
                    await ChangelogSchema.EnsureAsync(connection, ct).ConfigureAwait(false);
                    var after = await ExistingTablesAsync(connection, ct).ConfigureAwait(false);
                    Report(DatabaseTarget.Describe(connectionString), schema, before, after);
                }
            }
            return ExitCodes.Ok;
        }
        catch (Exception e)
        {
            return Failures.Report(Name, e, ct);
        }
    }

    private static void Report(string target, string schema, HashSet<string> before, HashSet<string> after)
    {
        var output = Terminal.Out;
        var created = ChangelogSchema.TableNames.Where(t => after.Contains(t) && !before.Contains(t)).ToList();
        var kept = ChangelogSchema.TableNames.Where(before.Contains).ToList();
        output.WriteLine($"Migrated the sidecar tables in schema {schema} on {target}:");
        if (created.Count > 0)
            output.WriteWrapped($"  {output.Paint("created", Tone.Good)}  ", string.Join(", ", created), indent: 11);
        if (kept.Count > 0)
            output.WriteWrapped($"  {output.Paint("present", Tone.Dim)}  ", string.Join(", ", kept) + " (left as they were; missing indexes added)", indent: 11);
        output.WriteLine(created.Count == 0 ? "Nothing to create: the database was up to date." : $"Created {created.Count} of {ChangelogSchema.TableNames.Count} tables.");
    }

    private static async Task<HashSet<string>> ExistingTablesAsync(NpgsqlConnection connection, CancellationToken ct)
    {
        var existing = new HashSet<string>(StringComparer.Ordinal);
        var command = new NpgsqlCommand(ExistingTablesSql, connection);
        await using (command.ConfigureAwait(false))
        {
            command.Parameters.Add(new NpgsqlParameter<string[]>("tables", NpgsqlDbType.Array | NpgsqlDbType.Text) { TypedValue = [.. ChangelogSchema.TableNames] });
            var reader = await command.ExecuteReaderAsync(ct).ConfigureAwait(false);
            await using (reader.ConfigureAwait(false))
            {
                while (await reader.ReadAsync(ct).ConfigureAwait(false))
                    existing.Add(reader.GetString(0));
            }
        }
        return existing;
    }
}
