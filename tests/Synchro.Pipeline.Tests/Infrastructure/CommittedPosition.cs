using System.Diagnostics;
using NpgsqlTypes;
using Synchro.Pipeline.Protocol;

namespace Synchro.Pipeline.Tests.Infrastructure;

/// <summary>
/// "Nothing more arrives", as a fact rather than a pause: a heartbeat written into the source WAL after the workload,
/// then a wait until the pipeline's committed position is at or past the heartbeat's LSN.
/// </summary>
/// <remarks>
/// The pipeline commits in source order and persists and confirms a heartbeat's position only once everything before
/// it is committed, so from then on the changelog holds all that the workload will ever produce there, duplicates
/// included. <c>pg_logical_emit_message</c> returns the end of the message's WAL record, which is the LSN the decoder
/// sees for it. The decoder drops a heartbeat that arrives while a batch is still lingering, so the wait writes another
/// one now and then: any later one stands for the first, since passing it means passing the first.
/// </remarks>
internal static class CommittedPosition
{
    public const string HeartbeatSql = "SELECT pg_logical_emit_message(false, 'synchro.heartbeat', '')";

    private const string PersistedSql = "SELECT confirmed_lsn FROM sync_wal_position WHERE slot_name = @slot";

    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan s_poll = TimeSpan.FromMilliseconds(20);

    // Long enough for a lingering batch to be cut (the tests' linger is milliseconds), short next to the timeout.
    private static readonly TimeSpan s_reemit = TimeSpan.FromMilliseconds(500);

    /// <summary>Writes a heartbeat into the WAL of <paramref name="source"/>; returns its LSN (at or past the server's WAL position when it was written).</summary>
    public static async Task<Lsn> EmitHeartbeatAsync(string source)
        => await Sql.ScalarAsync<NpgsqlLogSequenceNumber>(source, HeartbeatSql);

    /// <summary>
    /// Writes a heartbeat into <paramref name="source"/>'s WAL and waits until <paramref name="pipeline"/> (running in
    /// this process as <paramref name="running"/>) has committed past it; fails at once when the pipeline stops.
    /// </summary>
    public static Task WaitUntilCommittedAsync(string source, WalPipeline pipeline, Task running, TimeSpan? timeout = null)
        => WaitAsync(source, () => Task.FromResult(pipeline.GetStatus().CommittedLsn), async () =>
        {
            if (!running.IsCompleted)
                return;
            await running;
            throw new InvalidOperationException("The pipeline stopped before it committed past the heartbeat.");
        }, "the pipeline's committed position (GetStatus().CommittedLsn)", timeout);

    /// <summary>
    /// Writes a heartbeat into <paramref name="source"/>'s WAL and waits until the position persisted for
    /// <paramref name="slot"/> in <paramref name="changelog"/> (<c>sync_wal_position</c>) is past it: for a pipeline in
    /// another process. <paramref name="alive"/> runs at every poll and throws when that process died.
    /// </summary>
    public static Task WaitUntilPersistedAsync(string source, string changelog, string slot, Func<Task>? alive = null, TimeSpan? timeout = null)
        => WaitAsync(source, async () => await Sql.ScalarAsync<object>(changelog, PersistedSql, ("slot", slot)) is long stored ? new Lsn(unchecked((ulong)stored)) : Lsn.Invalid,
            alive, $"sync_wal_position.confirmed_lsn of slot {slot}", timeout);

    private static async Task WaitAsync(string source, Func<Task<Lsn>> position, Func<Task>? alive, string whose, TimeSpan? timeout)
    {
        var limit = timeout ?? s_timeout;
        var heartbeat = await EmitHeartbeatAsync(source);
        var clock = Stopwatch.StartNew();
        var emitted = clock.Elapsed;
        Lsn current;
        while ((current = await position()) < heartbeat)
        {
            if (alive is not null)
                await alive();
            if (clock.Elapsed > limit)
                throw new TimeoutException($"Waited {limit.TotalSeconds} s for {whose} to reach the heartbeat at {heartbeat}; it is at {current}.");
            if (clock.Elapsed - emitted > s_reemit)
            {
                await EmitHeartbeatAsync(source);
                emitted = clock.Elapsed;
            }
            await Task.Delay(s_poll);
        }
    }
}
