using System.Globalization;
using System.Text.RegularExpressions;
using Npgsql;
using Synchro.Pipeline.Cli;
using Synchro.Pipeline.Tests.Infrastructure;

namespace Synchro.Pipeline.Tests.Cli;

/// <summary>The <c>demo</c> command as a user runs it: a process, its exit code and its output.</summary>
public sealed partial class DemoCommandTests
{
    private static readonly TimeSpan s_timeout = TimeSpan.FromMinutes(3);

    [Fact]
    public async Task Demo_runs_the_workload_and_verifies_the_changelog_then_deletes_the_server()
    {
        var result = await CliProcess.RunAsync(s_timeout, null, "demo", "--duration", "5");

        Assert.True(result.ExitCode == ExitCodes.Ok, $"exit {result.ExitCode}\n{result.Output}\n{result.Error}");
        var passed = Passed().Match(result.Output);
        Assert.True(passed.Success, $"no verification-passed line:\n{result.Output}");
        Assert.True(Count(passed.Groups["rows"]) > 0 && Count(passed.Groups["changes"]) > 0 && Count(passed.Groups["records"]) > 0, passed.Value);
        Assert.Matches(@"pgbench ran [1-9][\d,]* transactions", result.Output);
        foreach (var table in new[] { "users", "orders", "order_lines", "categories" })
            Assert.Matches($@"(?m)^  {table} +[1-9]", result.Output);

        // Redirected: plain progress lines, no carriage returns or terminal escapes.
        Assert.DoesNotContain('\r', result.Output);
        Assert.DoesNotContain('\u001b', result.Output);
        Assert.Matches(@"(?m)^ +\d+s workload +[\d,]+ changes/s \|", result.Output);

        var root = Path.GetDirectoryName(DataDirectory().Match(result.Output).Groups[1].Value)!;
        Assert.False(Directory.Exists(root), $"{root} is deleted after the demo");
        Assert.Contains($"server stopped and {root} deleted", result.Output, StringComparison.Ordinal);
    }

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public async Task Keep_leaves_the_server_running_with_the_changelog_and_prints_how_to_stop_it()
    {
        var result = await CliProcess.RunAsync(s_timeout, null, "demo", "--duration", "2", "--keep");
        var connectionString = KeptServer().Match(result.Output).Groups[1].Value;
        var stop = StopCommand().Match(result.Output).Groups[1].Value;
        var root = RemoveCommand().Match(result.Output).Groups[1].Value;
        try
        {
            Assert.True(result.ExitCode == ExitCodes.Ok, $"exit {result.ExitCode}\n{result.Output}\n{result.Error}");
            Assert.Contains("verification passed", result.Output, StringComparison.Ordinal);
            Assert.NotEqual("", connectionString);
            Assert.True(Directory.Exists(root), $"{root} is kept");

            // The process has exited; the server it started still answers, with the demo's changelog in it: over the socket
            // printed (its directory this account's alone), and over TCP only with the password from the file printed.
            Assert.StartsWith($"Host={root};", connectionString, StringComparison.Ordinal);
            var rows = await Sql.ScalarAsync<long>(connectionString, "SELECT count(*) FROM sync_changelog");
            Assert.True(rows > 0);
            var passwordFile = PasswordFile().Match(result.Output).Groups[1].Value;
            Assert.Equal(Path.Combine(root, "pgpass"), passwordFile);
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(passwordFile));
            var password = File.ReadAllText(passwordFile).Trim().Split(':')[^1];
            Assert.DoesNotContain(password, result.Output, StringComparison.Ordinal);
            var tcp = new NpgsqlConnectionStringBuilder(connectionString) { Host = "127.0.0.1", Pooling = false };
            await Assert.ThrowsAnyAsync<NpgsqlException>(() => Sql.ScalarAsync<long>(tcp.ConnectionString, "SELECT 1"));
            tcp.Password = password;
            Assert.Equal(rows, await Sql.ScalarAsync<long>(tcp.ConnectionString, "SELECT count(*) FROM sync_changelog"));
        }
        finally
        {
            if (stop.Length > 0)
            {
                var stopped = await ShellAsync(stop);
                Assert.True(stopped == 0, $"'{stop}' exited with {stopped}");
            }
            if (root.Length > 0 && root.Contains("synchro-pg-", StringComparison.Ordinal))
                Directory.Delete(root, recursive: true);
        }

        NpgsqlConnection.ClearAllPools();
        await Assert.ThrowsAnyAsync<NpgsqlException>(() => Sql.ScalarAsync<long>(connectionString, "SELECT 1"));
    }

    [Fact]
    public async Task Missing_server_binaries_are_a_setup_error_in_one_line()
    {
        var result = await CliProcess.RunAsync(
            s_timeout,
            new Dictionary<string, string> { ["SYNCHRO_PG_BINDIR"] = "/nonexistent/postgresql/bin" },
            "demo");

        Assert.Equal(ExitCodes.Configuration, result.ExitCode);
        Assert.Single(result.Error.TrimEnd('\n').Split('\n'));
        Assert.StartsWith("demo: SYNCHRO_PG_BINDIR is '/nonexistent/postgresql/bin'", result.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Pg_version_runs_that_major_with_the_installed_client_programs()
    {
        var major = PostgresServerFixture.MatrixVersion == 16 ? 17 : 16;

        var result = await CliProcess.RunAsync(s_timeout, null, "demo", "--duration", "2", "--pg-version", major.ToString(CultureInfo.InvariantCulture));

        Assert.True(result.ExitCode == ExitCodes.Ok, $"exit {result.ExitCode}\n{result.Output}\n{result.Error}");
        Assert.StartsWith($"PostgreSQL {major} started in ", result.Output, StringComparison.Ordinal);
        Assert.Matches(@"pgbench ran [1-9][\d,]* transactions", result.Output);
        Assert.Contains("verification passed", result.Output, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("14")]
    [InlineData("19")]
    public async Task A_pg_version_outside_15_to_18_is_refused_before_anything_starts(string major)
    {
        var result = await CliProcess.RunAsync(s_timeout, null, "demo", "--pg-version", major);

        Assert.NotEqual(ExitCodes.Ok, result.ExitCode);
        Assert.Contains("--pg-version must be a PostgreSQL major version from 15 to 18.", result.Error, StringComparison.Ordinal);
        Assert.DoesNotContain("started", result.Output, StringComparison.Ordinal);
    }

    private static long Count(Group group) => long.Parse(group.Value, NumberStyles.AllowThousands, CultureInfo.InvariantCulture);

    private static async Task<int> ShellAsync(string command)
    {
        var start = new System.Diagnostics.ProcessStartInfo("/bin/sh", ["-c", command]) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var shell = System.Diagnostics.Process.Start(start)!;
        var output = shell.StandardOutput.ReadToEndAsync();
        var error = shell.StandardError.ReadToEndAsync();
        await shell.WaitForExitAsync();
        await Task.WhenAll(output, error);
        return shell.ExitCode;
    }

    [GeneratedRegex(@"verification passed: (?<rows>[\d,]+) changelog rows match (?<changes>[\d,]+) audited source changes record by record; each of the (?<records>[\d,]+) source records")]
    private static partial Regex Passed();

    [GeneratedRegex(@"\(data directory (\S+)\)")]
    private static partial Regex DataDirectory();

    [GeneratedRegex(@"the server keeps running: (\S+)")]
    private static partial Regex KeptServer();

    [GeneratedRegex(@"PGPASSFILE=(\S+) ")]
    private static partial Regex PasswordFile();

    [GeneratedRegex(@"stop it with: (.+)")]
    private static partial Regex StopCommand();

    [GeneratedRegex(@"then delete it: rm -rf (\S+)")]
    private static partial Regex RemoveCommand();
}
