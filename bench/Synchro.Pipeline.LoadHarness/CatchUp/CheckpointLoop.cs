using Npgsql;
using Synchro.Pipeline.LoadHarness.Sampling;

namespace Synchro.Pipeline.LoadHarness.CatchUp;

/// <summary>
/// A CHECKPOINT every interval while a drain runs (<see cref="HarnessOptions.CheckpointEverySeconds"/>): each moves the
/// redo pointer, so the next change to every page logs a full-page image, as a timed checkpoint would.
/// </summary>
internal sealed class CheckpointLoop : IAsyncDisposable
{
    private readonly NpgsqlConnection _connection;
    private readonly SamplingLoop _loop = new();

    private CheckpointLoop(NpgsqlConnection connection)
    {
        _connection = connection;
    }

    public int Checkpoints { get; private set; }

    public static async Task<CheckpointLoop> StartAsync(string connectionString, TimeSpan interval, CancellationToken ct)
    {
        var connection = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(connectionString) { Pooling = false }.ConnectionString);
        await connection.OpenAsync(ct);
        var loop = new CheckpointLoop(connection);
        loop._loop.Start(interval, loop.CheckpointAsync);
        return loop;
    }

    public Task StopAsync() => _loop.StopAsync();

    public async ValueTask DisposeAsync()
    {
        await _loop.StopQuietlyAsync();
        await _connection.DisposeAsync();
        _loop.Dispose();
    }

    private async Task CheckpointAsync()
    {
        await using var checkpoint = new NpgsqlCommand("CHECKPOINT", _connection) { CommandTimeout = 0 };
        await checkpoint.ExecuteNonQueryAsync();
        Checkpoints++;
    }
}
