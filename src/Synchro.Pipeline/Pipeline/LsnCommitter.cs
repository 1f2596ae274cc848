using System.Threading.Channels;
using Npgsql.Replication;
using Synchro.Pipeline.Protocol;

namespace Synchro.Pipeline.Pipeline;

/// <summary>
/// Tells the server how far the changelog is durable, so it can release WAL. Invariant 2: the LSN
/// it reports is always the end of a source transaction the writer has committed.
/// </summary>
internal sealed class LsnCommitter(ChannelReader<Lsn> committed, ReplicationConnection connection)
{
    /// <summary>The last LSN reported to the server.</summary>
    public Lsn Confirmed => new(unchecked((ulong)Interlocked.Read(ref _confirmed)));

    private long _confirmed;

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        await foreach (var lsn in committed.ReadAllAsync(cancellationToken).ConfigureAwait(false))
        {
            // The writer may have committed several batches meanwhile: report only the newest.
            var newest = lsn;
            while (committed.TryRead(out var later))
                newest = Lsn.Max(newest, later);
            connection.SetReplicationStatus(newest);
            await connection.SendStatusUpdate(cancellationToken).ConfigureAwait(false);
            Interlocked.Exchange(ref _confirmed, unchecked((long)newest.Value));
        }
    }
}
