using Synchro.Pipeline.LocalPostgres;

namespace Synchro.Pipeline.Samples.Tests.Infrastructure;

/// <summary>One throwaway PostgreSQL server (wal_level=logical) for the sample tests; stopped and deleted when they finish.</summary>
public sealed class SamplesPostgresFixture : IAsyncLifetime
{
    private LocalPostgresServer? _server;
    private int _databases;

    public LocalPostgresServer Server => _server ?? throw new InvalidOperationException("The server has not started.");

    public async Task InitializeAsync() => _server = await LocalPostgresServer.StartAsync();

    public async Task DisposeAsync()
    {
        if (_server is not null)
            await _server.DisposeAsync();
    }

    /// <summary>A new empty database; returns its connection string.</summary>
    public Task<string> CreateDatabaseAsync(string prefix) => Server.CreateDatabaseAsync($"{prefix}_{Interlocked.Increment(ref _databases)}");
}

[CollectionDefinition(Name)]
public sealed class SamplesPostgresCollection : ICollectionFixture<SamplesPostgresFixture>
{
    public const string Name = "samples-postgres";
}
