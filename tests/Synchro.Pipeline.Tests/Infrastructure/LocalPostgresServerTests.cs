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

    [Fact]
    public async Task Missing_server_binaries_fail_with_one_line_that_says_what_to_install()
    {
        var error = await Assert.ThrowsAsync<LocalPostgresException>(
            () => LocalPostgresServer.StartAsync(new LocalPostgresOptions { BinDirectory = "/nonexistent/postgresql/bin" }));

        Assert.DoesNotContain('\n', error.Message);
        Assert.Contains("apt-get install -y postgresql", error.Message, StringComparison.Ordinal);
        Assert.Contains("/nonexistent/postgresql/bin", error.Message, StringComparison.Ordinal);
    }
}
