using Npgsql;

namespace Synchro.Pipeline.LoadHarness.Sampling;

/// <summary>
/// A reading taken every interval until stopped; the samplers' shared loop. A reading is never cancelled mid-query, so
/// the sampler's connection can serve a last reading once the loop has stopped.
/// </summary>
internal sealed class SamplingLoop : IDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private Task _loop = Task.CompletedTask;

    public void Start(TimeSpan interval, Func<Task> read) => _loop = RunAsync(interval, read, _stop.Token);

    /// <summary>Stops after the reading in flight; a failed reading is thrown here.</summary>
    public async Task StopAsync()
    {
        await _stop.CancelAsync();
        await _loop;
    }

    /// <summary>Stops, as <see cref="StopAsync"/>, taking a lost connection as the end of the readings, not of the phase.</summary>
    public async Task StopQuietlyAsync()
    {
        try
        {
            await StopAsync();
        }
        catch (Exception e) when (e is NpgsqlException or IOException)
        {
        }
    }

    public void Dispose() => _stop.Dispose();

    private static async Task RunAsync(TimeSpan interval, Func<Task> read, CancellationToken ct)
    {
        try
        {
            while (!ct.IsCancellationRequested)
            {
                await Task.Delay(interval, ct);
                await read();
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
    }
}
