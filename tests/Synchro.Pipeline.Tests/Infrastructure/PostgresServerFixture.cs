using Synchro.Pipeline.LocalPostgres;

namespace Synchro.Pipeline.Tests.Infrastructure;

/// <summary>
/// One throwaway PostgreSQL server (wal_level=logical) for the tests of the <c>postgres</c>
/// collection; stopped and deleted when they finish, pass or fail.
/// </summary>
/// <remarks>
/// The server is the major <c>SYNCHRO_PG_VERSION</c> names (15 to 18; one not installed is fetched with npm and
/// cached), else the newest installed: the whole suite runs against the version the matrix asks for. A subclass
/// that needs another major overrides <see cref="Version"/> (<see cref="Postgres17ServerFixture"/>), and every helper
/// that takes this fixture works with it unchanged.
/// </remarks>
public class PostgresServerFixture : IAsyncLifetime
{
    public const string VersionVariable = "SYNCHRO_PG_VERSION";

    private LocalPostgresServer? _server;
    private int _databases;

    public LocalPostgresServer Server => _server ?? throw new InvalidOperationException("The server has not started.");

    /// <summary>The major of <c>SYNCHRO_PG_VERSION</c>, or <see langword="null"/> when it is unset (or not a number, which the server start reports).</summary>
    public static int? MatrixVersion =>
        int.TryParse(Environment.GetEnvironmentVariable(VersionVariable), System.Globalization.CultureInfo.InvariantCulture, out var major) ? major : null;

    // Every test gets a database of its own, and Npgsql keeps idle pooled connections per connection string for a
    // while: the shared server needs room for a few per database across the whole collection.
    public async Task InitializeAsync() => _server = await LocalPostgresServer.StartAsync(new LocalPostgresOptions
    {
        Version = Version,
        Settings = { ["max_connections"] = "600" },
    });

    public async Task DisposeAsync()
    {
        if (_server is not null)
            await _server.DisposeAsync();
    }

    /// <summary>A new empty database; returns its connection string.</summary>
    public Task<string> CreateDatabaseAsync(string prefix)
        => Server.CreateDatabaseAsync($"{prefix}_{Interlocked.Increment(ref _databases)}".Replace('.', '_').Replace('-', '_'));

    /// <summary>
    /// The server's major version; <see langword="null"/> (here) lets <see cref="LocalPostgresServer"/> take
    /// <c>SYNCHRO_PG_VERSION</c>, else the newest installed.
    /// </summary>
    protected virtual int? Version => null;
}

[CollectionDefinition(Name)]
public sealed class PostgresCollection : ICollectionFixture<PostgresServerFixture>
{
    public const string Name = "postgres";
}
