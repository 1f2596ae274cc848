using System.Diagnostics;
using System.Runtime.Versioning;
using Npgsql;
using Synchro.Pipeline.LocalPostgres;

namespace Synchro.Pipeline.Tests.Infrastructure;

public sealed class LocalPostgresServerTests
{
    [Fact]
    public async Task Starts_a_logical_replication_server_and_removes_it_on_dispose()
    {
        string dataDirectory;
        await using (var server = await LocalPostgresServer.StartAsync())
        {
            dataDirectory = server.DataDirectory;
            await using var connection = new NpgsqlConnection(server.ConnectionString());
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand(
                "SELECT current_setting('wal_level'), current_setting('max_replication_slots')::int, current_user", connection);
            await using var reader = await command.ExecuteReaderAsync();
            Assert.True(await reader.ReadAsync());
            Assert.Equal("logical", reader.GetString(0));
            Assert.True(reader.GetInt32(1) >= 16, "enough slots for parallel tests");
            Assert.Equal("postgres", reader.GetString(2));
            Assert.True(Directory.Exists(dataDirectory));
            Assert.True(server.ServerVersion >= 10);
        }

        Assert.False(Directory.Exists(dataDirectory), "the data directory is deleted on dispose");
    }

    [Fact]
    public async Task Accepts_connections_on_its_unix_socket()
    {
        await using var server = await LocalPostgresServer.StartAsync();
        var builder = new NpgsqlConnectionStringBuilder(server.ConnectionString()) { Host = server.SocketDirectory };
        await using var connection = new NpgsqlConnection(builder.ConnectionString);

        await connection.OpenAsync();

        Assert.Equal(System.Data.ConnectionState.Open, connection.State);
    }

    /// <summary>
    /// Nobody else on the machine gets in: TCP needs the generated password (a SCRAM verifier on the server; no host line
    /// trusts), the socket's directory is the owner's alone, and the password sits only in a 0600 file beside it.
    /// </summary>
    [Fact]
    [UnsupportedOSPlatform("windows")]
    public async Task Tcp_connections_need_the_generated_password_and_the_socket_is_the_owners_alone()
    {
        await using var server = await LocalPostgresServer.StartAsync();
        var password = new NpgsqlConnectionStringBuilder(server.ConnectionString()).Password;
        Assert.Equal(32, password?.Length);

        var none = await Assert.ThrowsAnyAsync<NpgsqlException>(() => OpenAsync(new NpgsqlConnectionStringBuilder(server.ConnectionString()) { Password = null }));
        Assert.Contains("password", none.Message, StringComparison.OrdinalIgnoreCase);
        var wrong = await Assert.ThrowsAsync<PostgresException>(() => OpenAsync(new NpgsqlConnectionStringBuilder(server.ConnectionString()) { Password = "guess" }));
        Assert.Equal(PostgresErrorCodes.InvalidPassword, wrong.SqlState);

        var rules = await QueryAsync(server.ConnectionString(), "SELECT type || ' ' || auth_method FROM pg_hba_file_rules ORDER BY line_number");
        Assert.All(rules.Where(r => r.StartsWith("host", StringComparison.Ordinal)), r => Assert.Equal("host scram-sha-256", r));
        Assert.Contains("host scram-sha-256", rules);
        Assert.All(rules.Where(r => !r.StartsWith("host", StringComparison.Ordinal)), r => Assert.Equal("local trust", r));
        Assert.Equal(["true"], await QueryAsync(server.ConnectionString(), "SELECT (rolpassword LIKE 'SCRAM-SHA-256$%')::text FROM pg_authid WHERE rolname = 'postgres'"));

        // The socket trusts, so its directory must keep everyone else out; the password file is the owner's only.
        Assert.Equal(server.RootDirectory, server.SocketDirectory);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(server.SocketDirectory));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(server.PasswordFile));
        var files = Directory.GetFiles(server.RootDirectory).Where(f => !Path.GetFileName(f).StartsWith(".s.PGSQL.", StringComparison.Ordinal));
        Assert.Equal([server.PasswordFile], files.Where(f => File.ReadAllText(f).Contains(password!, StringComparison.Ordinal)).ToArray());
        Assert.Equal(["1"], await QueryAsync(server.SocketConnectionString(), "SELECT 1"));

        // libpq programs take the password from the file.
        var psql = new ProcessStartInfo(server.ClientProgram("psql"), ["-h", "127.0.0.1", "-p", server.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "-U", "postgres", "-w", "-Atc", "SELECT 'via passfile'", "postgres"])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            Environment = { ["PGPASSFILE"] = server.PasswordFile },
        };
        using var process = Process.Start(psql)!;
        var output = await process.StandardOutput.ReadToEndAsync();
        var errors = await process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        Assert.True(process.ExitCode == 0, errors);
        Assert.Equal("via passfile", output.Trim());
    }

    [Fact]
    public async Task Missing_server_binaries_fail_with_one_line_that_says_what_to_install()
    {
        var error = await Assert.ThrowsAsync<LocalPostgresException>(
            () => LocalPostgresServer.StartAsync(new LocalPostgresOptions { BinDirectory = "/nonexistent/postgresql/bin" }));

        Assert.DoesNotContain('\n', error.Message);
        Assert.Contains("apt-get install -y postgresql", error.Message, StringComparison.Ordinal);
        Assert.Contains("/nonexistent/postgresql/bin", error.Message, StringComparison.Ordinal);
    }

    private static async Task OpenAsync(NpgsqlConnectionStringBuilder builder)
    {
        builder.Pooling = false;
        await using var connection = new NpgsqlConnection(builder.ConnectionString);
        await connection.OpenAsync();
    }

    private static async Task<List<string>> QueryAsync(string connectionString, string sql)
    {
        await using var connection = new NpgsqlConnection(connectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await using var reader = await command.ExecuteReaderAsync();
        var rows = new List<string>();
        while (await reader.ReadAsync())
            rows.Add(Convert.ToString(reader.GetValue(0), System.Globalization.CultureInfo.InvariantCulture)!);
        return rows;
    }
}
