using Synchro.Pipeline.LocalPostgres;

namespace Synchro.Pipeline.Tests.Infrastructure;

/// <summary>
/// One throwaway PostgreSQL server (wal_level=logical) for the tests of the <c>postgres</c>
/// collection; stopped and deleted when they finish, pass or fail.
/// </summary>
/// <remarks>
/// The server's binaries come from <see cref="BinDirectoryAsync"/>: a subclass for another major version overrides it
/// (<see cref="Postgres17ServerFixture"/>), and every helper that takes this fixture works with it unchanged.
/// </remarks>
public class PostgresServerFixture : IAsyncLifetime
{
    private LocalPostgresServer? _server;
    private int _databases;

    public LocalPostgresServer Server => _server ?? throw new InvalidOperationException("The server has not started.");

    // Every test gets a database of its own, and Npgsql keeps idle pooled connections per connection string for a
    // while: the shared server needs room for a few per database across the whole collection.
    public async Task InitializeAsync() => _server = await LocalPostgresServer.StartAsync(new LocalPostgresOptions
    {
        BinDirectory = await BinDirectoryAsync(),
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
    /// The directory holding the server's initdb, pg_ctl and postgres; <see langword="null"/> (here) lets
    /// <see cref="LocalPostgresServer"/> search for them (<c>SYNCHRO_PG_BINDIR</c>, PATH, <c>/usr/lib/postgresql/*/bin</c>).
    /// </summary>
    protected virtual Task<string?> BinDirectoryAsync() => Task.FromResult<string?>(null);
}

[CollectionDefinition(Name)]
public sealed class PostgresCollection : ICollectionFixture<PostgresServerFixture>
{
    public const string Name = "postgres";
}
